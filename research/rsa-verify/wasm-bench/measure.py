#!/usr/bin/env python3
"""Runs the bench binaries several times, interleaved, and reports per case the median
of the per-run medians, the median of the per-run 'first' (first call in a fresh
process) and the overall minimum, all in µs.

usage: measure.py RUNS FILTER ITERS CONFIG...   CONFIG = native-o3 | native-z | wasm-o3 | wasm-z | wasm-zmix, wasm configs
  optionally suffixed -liftoff (node's default tiering; otherwise --no-liftoff
  --no-wasm-lazy-compilation, i.e. TurboFan only, compiled up front, as Envoy's V8 runs)
"""
import re, statistics, subprocess, sys

T = '/work/rsa-lab/target'
NODE = ['node', '--no-warnings', '--no-liftoff', '--no-wasm-lazy-compilation']
def cmd(cfg, flt, iters):
    if cfg.startswith('native-'):
        prof = {'native-o3': 'release-o3', 'native-z': 'release'}[cfg]
        return [f'{T}/{prof}/bench', flt, iters]
    node = NODE
    if cfg.endswith('-liftoff'):  # node's defaults: Liftoff first, tier-up to TurboFan when hot
        node, cfg = ['node', '--no-warnings'], cfg[:-len('-liftoff')]
    prof = {'wasm-o3': 'release-o3', 'wasm-z': 'release', 'wasm-zmix': 'release-zmix'}[cfg]
    return node + ['run.mjs', f'{T}/wasm32-wasip1/{prof}/bench.wasm', flt, iters]

runs, flt, iters, cfgs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
res = {}  # (cfg, case) -> lists
for r in range(runs):
    for cfg in cfgs:
        out = subprocess.run(cmd(cfg, flt, iters), capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.match(r'(.*?)\s+first\s+([\d.]+)\s+median\s+([\d.]+)\s+min\s+([\d.]+)', line)
            if m:
                d = res.setdefault((cfg, m.group(1)), ([], [], []))
                for i in range(3):
                    d[i].append(float(m.group(i + 2)))
print(f'{"config":<10} {"case":<44} {"first":>8} {"median":>8} {"min":>8}   ({runs} runs x {iters} iters)')
for (cfg, case), (f, med, mn) in res.items():
    print(f'{cfg:<10} {case:<44} {statistics.median(f):8.1f} {statistics.median(med):8.1f} {min(mn):8.1f}')
