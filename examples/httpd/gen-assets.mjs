#!/usr/bin/env node
/**
 * Writes the httpd example's document set into `assets/` (or the directory given as the first
 * argument). Deterministic: the same bytes every run, with no clock or library-version input,
 * so the committed files can be checked against a fresh run (packages/ilwaco-sdk/test).
 *
 * The set mirrors the paper's small-document workload (section 4.2.2: HTML files averaging
 * about 2 KB): 40 pages `page-NN.html` of 1.2-2.6 KB, an index, a few typed files (css, js,
 * json, svg, png, txt), a subdirectory with its own index, `big.bin`, 1 MiB of
 * pseudo-random bytes for the large-file case, and `doc-2k.html`, exactly 2,048 bytes: the
 * 2 KB document of the HotOS paper's Figure 3 that `denali swap-bench` fetches.
 *
 * Usage: node examples/httpd/gen-assets.mjs [out-dir]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'assets');
const PAGES = 40;
const BIG_BYTES = 1024 * 1024;

/** xorshift32: a tiny deterministic generator (never 0 for a non-zero seed). */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const WORDS = (
  'denali ilwaco yakima virtual machine isolation kernel guest service packet network ' +
  'interrupt idle clock register memory page thread stack socket buffer queue scheduler ' +
  'round robin quantum batch upcall hypercall device driver ethernet switch frame latency ' +
  'throughput request response document server client load workload static content tree'
).split(' ');

function sentence(next) {
  const n = 6 + (next() % 10);
  const w = Array.from({ length: n }, () => WORDS[next() % WORDS.length]);
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  return `${w.join(' ')}.`;
}

function page(i) {
  const next = rng(0x9e3779b9 ^ (i * 2654435761));
  const target = 1200 + (next() % 1400); // body bytes: 1200..2599, mean about 1.9 KB
  const title = `Page ${String(i).padStart(2, '0')}`;
  const head =
    `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${title}</title>\n` +
    `<link rel="stylesheet" href="/style.css">\n</head>\n<body>\n<h1>${title}</h1>\n`;
  const tail = `<p><a href="/">index</a></p>\n</body>\n</html>\n`;
  let body = '';
  while (head.length + body.length + tail.length < target) body += `<p>${sentence(next)} ${sentence(next)}</p>\n`;
  return head + body + tail;
}

/** An HTML page of exactly `bytes` bytes (the tail comment pads it). */
function exactPage(title, bytes, seed) {
  const next = rng(seed);
  const head = `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${title}</title>\n</head>\n<body>\n<h1>${title}</h1>\n`;
  const tail = '</body>\n</html>\n';
  let body = '';
  for (;;) {
    const p = `<p>${sentence(next)}</p>\n`;
    if (head.length + body.length + p.length + tail.length + 9 > bytes) break;
    body += p;
  }
  const pad = bytes - head.length - body.length - tail.length - 8; // '<!--' + '-->\n' + pad
  return `${head}${body}<!--${'.'.repeat(pad)}-->\n${tail}`;
}

function index(names) {
  const items = names.map((n) => `<li><a href="/${n}">${n}</a></li>`).join('\n');
  return (
    `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Denali httpd</title>\n` +
    `<link rel="stylesheet" href="/style.css">\n<script src="/app.js"></script>\n</head>\n<body>\n` +
    `<h1>Denali httpd</h1>\n<p>Static documents served from an Ilwaco image (paper section 4.2.2).</p>\n` +
    `<img src="/logo.svg" alt="logo"> <img src="/pixel.png" alt="pixel">\n<ul>\n${items}\n` +
    `<li><a href="/docs/">docs/</a></li>\n<li><a href="/big.bin">big.bin</a> (1 MiB)</li>\n</ul>\n</body>\n</html>\n`
  );
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A 4x4 RGB PNG, its image data in one stored (uncompressed) deflate block. */
function png() {
  const w = 4;
  const h = 4;
  const raw = [];
  for (let y = 0; y < h; y++) {
    raw.push(0); // filter: none
    for (let x = 0; x < w; x++) raw.push(x * 60, y * 60, 200);
  }
  const data = Buffer.from(raw);
  let a = 1;
  let b = 0;
  for (const v of data) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  const z = Buffer.alloc(2 + 5 + data.length + 4);
  z[0] = 0x78;
  z[1] = 0x01;
  z[2] = 1; // final stored block
  z.writeUInt16LE(data.length, 3);
  z.writeUInt16LE(~data.length & 0xffff, 5);
  data.copy(z, 7);
  z.writeUInt32BE(((b << 16) | a) >>> 0, 7 + data.length);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', Buffer.alloc(0))]);
}

function big() {
  const next = rng(20021209);
  const b = Buffer.alloc(BIG_BYTES);
  for (let i = 0; i < BIG_BYTES; i += 4) b.writeUInt32LE(next(), i);
  return b;
}

const files = new Map();
const names = Array.from({ length: PAGES }, (_, i) => `page-${String(i).padStart(2, '0')}.html`);
names.forEach((n, i) => files.set(n, page(i)));
files.set('index.html', index(names));
files.set('style.css', 'body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }\nh1 { color: #235; }\n');
files.set('app.js', "document.addEventListener('DOMContentLoaded', () => { document.title += ' (ready)'; });\n");
files.set('data.json', `${JSON.stringify({ service: 'httpd', pages: PAGES, paper: 'Denali, OSDI 2002, 4.2.2' }, null, 2)}\n`);
files.set(
  'logo.svg',
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="32" viewBox="0 0 64 32">' +
    '<path d="M0 32 L20 6 L30 18 L40 2 L64 32 Z" fill="#235"/></svg>\n',
);
files.set('pixel.png', png());
files.set('readme.txt', 'Documents for examples/httpd. Regenerate with: node examples/httpd/gen-assets.mjs\n');
files.set('docs/index.html', '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>docs</title></head>\n<body><p><a href="guide.html">guide</a></p></body>\n</html>\n');
files.set('docs/guide.html', `<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>guide</title></head>\n<body>\n<p>${sentence(rng(7))}</p>\n</body>\n</html>\n`);
files.set('big.bin', big());
files.set('doc-2k.html', exactPage('A 2 KB document', 2048, 0x2048));

for (const [name, data] of files) {
  const p = join(out, name);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
}
console.log(`wrote ${files.size} files to ${out}`);
