// Runs the micro-benchmark (wasm32-wasip1) under node's V8 with Envoy's settings (no Liftoff baseline
// tier, eager compilation), prints its JSON. Usage: node --no-liftoff --no-wasm-lazy-compilation
//   bench/micro/run.mjs <micro.wasm> [--quick | --first-only]
// (bench/micro/collect.mjs runs it so, with the native and criterion runs.)
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env } from 'node:process';

const [wasmPath, ...args] = argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: ['micro', ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
