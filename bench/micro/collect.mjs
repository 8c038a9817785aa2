// bench/micro, every way it runs: the core's operations (src/lib.rs) timed inside wasm (wasm32-wasip1
// under node's V8 with Envoy's settings: no Liftoff, eager compilation), natively by the same harness
// (src/main.rs), and natively under criterion (benches/micro.rs). `collectMicro({ quick })` builds and
// runs all three and returns
//   { wasm_v8: {<op>_us, first_RS256_us, first_RS256_us_samples, ...}, native: {same keys},
//     native_criterion: {<op>_us: {median, ci: [low, high], confidence_level}} }
// (µs per call; criterion's median point estimate and its confidence interval). `first_RS256_us` in
// wasm is the median over fresh instances (new process, new module) of the first RS256 verification
// right after the JWKS parse. Throws on any failure; writes nothing to stdout (progress on stderr).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PKG = 'portcullis-micro-bench';
const NODE_FLAGS = ['--no-warnings', '--no-liftoff', '--no-wasm-lazy-compilation'];

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, ...env } });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${(r.stderr || '').slice(-3000)}${(r.stdout || '').slice(-2000)}`);
  }
  return r.stdout;
}

function json(cmd, args) {
  const out = run(cmd, args).trim();
  try {
    return JSON.parse(out);
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')}: not JSON (${e.message}): ${out.slice(0, 500)}`);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Criterion's results of this run (written after `since`), keyed `<group>_<name>_us`, in µs. */
function criterionResults(targetDir, since) {
  const base = path.join(targetDir, 'criterion');
  const out = {};
  for (const group of fs.existsSync(base) ? fs.readdirSync(base) : []) {
    const gdir = path.join(base, group);
    if (!fs.statSync(gdir).isDirectory()) continue;
    for (const bench of fs.readdirSync(gdir)) {
      const file = path.join(gdir, bench, 'new', 'estimates.json');
      if (!fs.existsSync(file) || fs.statSync(file).mtimeMs < since) continue;
      const m = JSON.parse(fs.readFileSync(file, 'utf8')).median;
      if (!m || typeof m.point_estimate !== 'number') throw new Error(`${file}: no median estimate`);
      out[`${group}_${bench}_us`] = {
        median: m.point_estimate / 1000,
        ci: [m.confidence_interval.lower_bound / 1000, m.confidence_interval.upper_bound / 1000],
        confidence_level: m.confidence_interval.confidence_level,
      };
    }
  }
  return out;
}

/** Builds and runs bench/micro in wasm (V8), natively, and natively under criterion. */
export async function collectMicro({ quick = false } = {}) {
  const q = quick ? ['--quick'] : [];
  const targetDir = json('cargo', ['metadata', '--format-version', '1', '--no-deps']).target_directory;

  console.error('micro: building the wasm harness');
  run('cargo', ['build', '--release', '-q', '-p', PKG, '--bin', PKG, '--target', 'wasm32-wasip1']);
  const wasmFile = path.join(targetDir, 'wasm32-wasip1', 'release', `${PKG}.wasm`);
  const wasmArgs = (...a) => [...NODE_FLAGS, path.join(ROOT, 'bench/micro/run.mjs'), wasmFile, ...a];
  console.error('micro: timing in wasm (V8)');
  const wasm = json(process.execPath, wasmArgs(...q));
  // The cold figure once per fresh instance: a new node process compiles and instantiates anew.
  const firsts = [wasm.first_RS256_us];
  for (let i = 0; i < (quick ? 1 : 6); i++) firsts.push(json(process.execPath, wasmArgs('--first-only')).first_RS256_us);
  wasm.first_RS256_us_samples = firsts;
  wasm.first_RS256_us = median(firsts);

  console.error('micro: timing natively');
  const native = json('cargo', ['run', '--release', '-q', '-p', PKG, '--bin', PKG, '--', ...q]);

  console.error(`micro: criterion (native)${quick ? ', quick' : ''}`);
  const since = Date.now() - 2000;
  run('cargo', ['bench', '-q', '-p', PKG, '--bench', 'micro'], quick ? { MICRO_QUICK: '1' } : { MICRO_QUICK: '' });
  const crit = criterionResults(targetDir, since);
  const ops = Object.keys(wasm).filter((k) => k.endsWith('_us') && !k.startsWith('first_'));
  const missing = ops.filter((k) => !(k in crit));
  if (missing.length) throw new Error(`criterion wrote no results for ${missing.join(', ')}`);
  const nativeCriterion = Object.fromEntries(ops.map((k) => [k, crit[k]]));

  return { wasm_v8: wasm, native_criterion: nativeCriterion, native };
}
