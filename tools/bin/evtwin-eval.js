#!/usr/bin/env node
'use strict';
require('./run-cli')('evtwin-eval', 'eval/cli.js');
