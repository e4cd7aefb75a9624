// Every command's implementation, loaded on first use (see commands-loader.ts).
export { buildCommand } from './build-command.js';
export { inspectCommand } from './inspect-command.js';
export { runCommand } from './run-command.js';
export { addToHost, detach } from './host-commands.js';
export { logsCommand, psCommand, stopCommand } from './ops-commands.js';
export { topCommand } from './top/top-command.js';
export { swapBenchCommand } from './swap-bench/command.js';
