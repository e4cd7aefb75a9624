#!/usr/bin/env node
// Bundles the denali CLI (packages/denali-cli/src/bin.ts and everything it imports) into one
// ES module, packages/denali-cli/dist/denali.mjs, so `bin/denali` starts without compiling
// TypeScript (issue 9: `denali --version` in ≤ 150 ms). Runs at install (root `postinstall`)
// and with `pnpm build:cli`. Also writes dist/inputs.json: the source files the bundle was made
// from, so bin/denali can tell a stale bundle (a source edited since) and use the sources.
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'packages/denali-cli/dist');
const outFile = join(outDir, 'denali.mjs');

/**
 * Modules find files beside their source (the SDK's C library, koffi for KVM workers) through
 * `import.meta.url`; in one bundle that would be the bundle's URL, so pin each module's own.
 */
const keepImportMetaUrl = {
  name: 'keep-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]src[\\/].*\.tsx?$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: args.path.endsWith('x') ? 'tsx' : 'ts' };
    });
  },
};

/**
 * ink loads its devtools bridge (react-devtools-core, ws) only under DEV=true, which the CLI
 * never sets: leave them out (smaller bundle, faster start).
 */
const noDevtools = {
  name: 'no-react-devtools',
  setup(b) {
    b.onResolve({ filter: /^react-devtools-core$|^\.\/devtools\.js$/ }, (args) =>
      args.path === 'react-devtools-core' || /[\\/]ink[\\/]/.test(args.importer) ? { path: args.path, namespace: 'denali-stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'denali-stub' }, () => ({
      contents: "const off = () => { throw new Error('React devtools are not part of the denali bundle'); }; export default { initialize: off, connectToDevTools: off }; export const connectToDevTools = off;",
      loader: 'js',
    }));
  },
};

mkdirSync(outDir, { recursive: true });
const started = performance.now();
const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  jsx: 'automatic',
  // koffi loads a native addon from its own package directory.
  external: ['koffi'],
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  write: false,
  minify: true,
  logLevel: 'warning',
  legalComments: 'none',
};

/**
 * Two bundles in one file. The inner one holds every command (the VMM, the SDK driver, the
 * TUI: about 1 MB); the outer one is the command line parser, which imports the inner one from
 * a data: URL only when a command runs. V8 must parse a module's code before running any of
 * it, but a string literal is only scanned: `denali --version` then costs little more than
 * starting Node.
 */
const onFailure = (e) => {
  // At install, a failed bundle must not fail the install: bin/denali then runs the sources.
  if (process.env.npm_lifecycle_event === 'postinstall') {
    console.warn(`denali: could not bundle the CLI (${e.message.split('\n')[0]}); bin/denali will run the TypeScript sources`);
    process.exit(0);
  }
  throw e;
};
/**
 * The user-mode uplink's relay worker runs in a worker thread started from source text
 * (relay-worker-source.ts). Build relay-worker.ts (and what it imports) as CommonJS and put the
 * text in place of that module, so the bundle needs no TypeScript loader and no other file.
 */
const relayWorker = await build({
  ...common,
  format: 'cjs',
  entryPoints: [join(root, 'packages/yakima/src/net/uplink/relay-worker.ts')],
  outfile: join(outDir, 'relay-worker.cjs'),
  plugins: [keepImportMetaUrl],
}).catch(onFailure);
const embedRelayWorker = {
  name: 'embed-relay-worker',
  setup(b) {
    b.onLoad({ filter: /[\\/]relay-worker-source\.ts$/ }, () => ({
      contents: `export function relayWorkerScript() { return ${JSON.stringify(relayWorker.outputFiles[0].text)}; }\n`,
      loader: 'js',
    }));
  },
};
const inner = await build({
  ...common,
  entryPoints: [join(root, 'packages/denali-cli/src/commands.ts')],
  outfile: join(outDir, 'commands.mjs'),
  // CommonJS dependencies bundled into an ES module still call require() for Node built-ins;
  // a data: URL module has no file URL of its own, so give require() the outer bundle's.
  banner: { js: `import { createRequire as __denaliRequire } from 'node:module'; const require = __denaliRequire(${JSON.stringify(pathToFileURL(outFile).href)});` },
  plugins: [embedRelayWorker, keepImportMetaUrl, noDevtools],
}).catch(onFailure);
// Name the inner module in stack traces (DENALI_DEBUG=1) instead of printing its data: URL.
const innerCode = inner.outputFiles[0].text + `\n//# sourceURL=${pathToFileURL(join(outDir, 'denali-commands.mjs')).href}\n`;
const innerUrl = 'data:text/javascript;base64,' + Buffer.from(innerCode).toString('base64');

/** Replace commands-loader.ts with a loader of the inner bundle. */
const embedCommands = {
  name: 'embed-commands',
  setup(b) {
    b.onLoad({ filter: /[\\/]commands-loader\.ts$/ }, () => ({
      contents: `const url = ${JSON.stringify(innerUrl)};\nexport function loadCommands() { return import(url); }\n`,
      loader: 'js',
    }));
  },
};
const result = await build({
  ...common,
  entryPoints: [join(root, 'packages/denali-cli/src/bin.ts')],
  outfile: outFile,
  banner: { js: "import { createRequire as __denaliRequire } from 'node:module'; const require = __denaliRequire(import.meta.url);" },
  plugins: [embedCommands, keepImportMetaUrl],
  // The data: URL import is meant to stay a runtime import.
  logOverride: { 'unsupported-dynamic-import': 'silent' },
}).catch(onFailure);

// Replace the bundle atomically: a denali started meanwhile runs the old file or the new one.
const tmp = `${outFile}.${process.pid}.tmp`;
writeFileSync(tmp, result.outputFiles[0].contents);
renameSync(tmp, outFile);
const inputs = [...new Set([...Object.keys(result.metafile.inputs), ...Object.keys(inner.metafile.inputs), ...Object.keys(relayWorker.metafile.inputs)])]
  .filter((p) => !p.includes(':')) // stubs
  .map((p) => resolve(root, p))
  .filter((p) => !p.includes(`${'/'}node_modules${'/'}`));
writeFileSync(`${tmp}.json`, JSON.stringify({ built: Date.now(), inputs: inputs.map((p) => relative(root, p)) }) + '\n');
renameSync(`${tmp}.json`, join(outDir, 'inputs.json'));
const size = statSync(outFile).size;
console.log(`denali CLI bundled: ${relative(process.cwd(), outFile)} (${(size / 1024).toFixed(0)} KiB, ${inputs.length} sources) in ${Math.round(performance.now() - started)} ms`);
