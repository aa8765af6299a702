#!/usr/bin/env node
'use strict';
// The shardvpn command: the compiled CLI lives in dist/src/main/cli.js.
require('../dist/src/main/cli.js').main(process.argv.slice(2));
