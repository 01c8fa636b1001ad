#!/usr/bin/env node
'use strict';
require('./run-cli')('evtwin-sim', 'sim/cli.js');
