/**
 * Load the commands' implementations (the VMM, the SDK driver, the TUI). `denali --version` and
 * `--help` never call this, so they start fast. In the CLI bundle, scripts/build-cli.mjs
 * replaces this module with one that imports the commands from a second bundle embedded in the
 * same file (a string: scanned, not parsed, at start-up).
 */
export function loadCommands(): Promise<typeof import('./commands.js')> {
  return import('./commands.js');
}
