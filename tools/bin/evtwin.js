#!/usr/bin/env node
'use strict';
require('./run-cli')('evtwin', 'cli/index.js');
