// Entry point of the bundled CLI (scripts/build-cli.mjs bundles this into dist/denali.mjs).
import { runMain } from './main.js';

await runMain();
