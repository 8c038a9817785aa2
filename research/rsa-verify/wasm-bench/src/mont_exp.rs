//! Experiments: loop shapes for the Montgomery modexp, timed against each other (bench
//! filter "exp"). Not the deliverable; the winner is copied into rsa_verify.rs.
#![allow(clippy::needless_range_loop)]

pub struct Key {
    pub n: Vec<u32>,
    pub n0inv: u32,
    pub rr: Vec<u32>,
}

fn neg_inv(n0: u32) -> u32 {
    let mut inv = n0;
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

pub fn limbs(be: &[u8], k: usize) -> Vec<u32> {
    let mut l = vec![0u32; k];
    for (x, c) in l.iter_mut().zip(be.rchunks(4)) {
        *x = c.iter().fold(0, |a, &b| (a << 8) | u32::from(b));
    }
    l
}

impl Key {
    pub fn new(n_be: &[u8]) -> Key {
        let k = n_be.len().div_ceil(4);
        let n = limbs(n_be, k);
        let n0inv = neg_inv(n[0]);
        // R^2 mod n by doubling (slow, fine for experiments).
        let mut x = vec![0u32; k];
        let bits = n_be.len() * 8 - n_be[0].leading_zeros() as usize;
        x[(bits - 1) / 32] = 1 << ((bits - 1) % 32);
        for _ in (bits - 1)..(64 * k) {
            dbl(&mut x, &n);
        }
        Key { n, n0inv, rr: x }
    }
}

fn ge(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}
fn sub(a: &mut [u32], b: &[u32]) {
    let mut br = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(br);
        *x = d2;
        br = u32::from(b1 | b2);
    }
}
fn dbl(x: &mut [u32], n: &[u32]) {
    let mut c = 0;
    for l in x.iter_mut() {
        let nx = *l >> 31;
        *l = (*l << 1) | c;
        c = nx;
    }
    if c != 0 || ge(x, n) {
        sub(x, n);
    }
}

// ---------- B: SOS with index loops (get/get_mut), squaring specialised ----------

#[inline(always)]
fn mac(t: &mut u32, a: u64, b: u32, carry: u64) -> u64 {
    let v = u64::from(*t) + a * u64::from(b) + carry;
    *t = v as u32;
    v >> 32
}

fn sos_mul(t: &mut [u32], a: &[u32], b: &[u32]) {
    let k = b.len();
    t.fill(0);
    for i in 0..a.len() {
        let ai = u64::from(a.get(i).copied().unwrap_or(0));
        let Some(row) = t.get_mut(i..i + k + 1) else {
            return;
        };
        let mut carry = 0;
        for j in 0..k {
            if let (Some(tj), Some(&bj)) = (row.get_mut(j), b.get(j)) {
                carry = mac(tj, ai, bj, carry);
            }
        }
        if let Some(top) = row.get_mut(k) {
            *top = carry as u32;
        }
    }
}

fn sos_sqr(t: &mut [u32], a: &[u32]) {
    let k = a.len();
    t.fill(0);
    for i in 0..k {
        let ai = u64::from(a.get(i).copied().unwrap_or(0));
        let Some(row) = t.get_mut(i + i + 1..i + k + 1) else {
            return;
        };
        let Some(rest) = a.get(i + 1..) else { return };
        let m = rest.len();
        let mut carry = 0;
        for j in 0..m {
            if let (Some(tj), Some(&aj)) = (row.get_mut(j), rest.get(j)) {
                carry = mac(tj, ai, aj, carry);
            }
        }
        if let Some(top) = row.get_mut(m) {
            *top = carry as u32;
        }
    }
    let mut carry = 0u64;
    for i in 0..k {
        let ai = u64::from(a.get(i).copied().unwrap_or(0));
        let sq = ai * ai;
        if let Some([lo, hi]) = t.get_mut(2 * i..2 * i + 2) {
            let l = (u64::from(*lo) << 1) + (sq & 0xffff_ffff) + carry;
            *lo = l as u32;
            let h = (u64::from(*hi) << 1) + (sq >> 32) + (l >> 32);
            *hi = h as u32;
            carry = h >> 32;
        }
    }
}

fn sos_redc(t: &mut [u32], out: &mut [u32], n: &[u32], n0inv: u32) {
    let k = n.len();
    let mut c2 = 0u64;
    for i in 0..k {
        let Some(row) = t.get_mut(i..i + k + 1) else {
            return;
        };
        let m = u64::from(row.first().copied().unwrap_or(0).wrapping_mul(n0inv));
        let mut carry = 0;
        for j in 0..k {
            if let (Some(tj), Some(&nj)) = (row.get_mut(j), n.get(j)) {
                carry = mac(tj, m, nj, carry);
            }
        }
        if let Some(tk) = row.get_mut(k) {
            let v = u64::from(*tk) + carry + c2;
            *tk = v as u32;
            c2 = v >> 32;
        }
    }
    if let Some(hi) = t.get(k..2 * k) {
        out.copy_from_slice(hi);
    }
    if c2 != 0 || ge(out, n) {
        sub(out, n);
    }
}

pub fn exp_sos_index(key: &Key, s: &[u32]) -> Vec<u32> {
    let k = key.n.len();
    let mut t = vec![0u32; 2 * k];
    let mut acc = s.to_vec();
    sos_mul(&mut t, &acc, &key.rr);
    sos_redc(&mut t, &mut acc, &key.n, key.n0inv);
    for _ in 0..16 {
        sos_sqr(&mut t, &acc);
        sos_redc(&mut t, &mut acc, &key.n, key.n0inv);
    }
    sos_mul(&mut t, &acc, s);
    sos_redc(&mut t, &mut acc, &key.n, key.n0inv);
    acc
}

// ---------- C: CIOS (multiplication and reduction interleaved), index loops ----------

/// x = x·y·R⁻¹ mod n; t has k + 1 limbs.
fn cios(x: &mut [u32], y: &[u32], n: &[u32], n0inv: u32, t: &mut [u32]) {
    let k = n.len();
    t.fill(0);
    let n0 = u64::from(n.first().copied().unwrap_or(0));
    let y0 = u64::from(y.first().copied().unwrap_or(0));
    for i in 0..k {
        let xi = u64::from(x.get(i).copied().unwrap_or(0));
        let t0 = u64::from(t.first().copied().unwrap_or(0));
        let p = t0 + xi * y0;
        let m = u64::from((p as u32).wrapping_mul(n0inv));
        let mut c1 = p >> 32;
        let mut c2 = (u64::from(p as u32) + m * n0) >> 32;
        for j in 1..k {
            if let (Some(&tj), Some(&yj), Some(&nj)) = (t.get(j), y.get(j), n.get(j)) {
                let p = u64::from(tj) + xi * u64::from(yj) + c1;
                c1 = p >> 32;
                let q = u64::from(p as u32) + m * u64::from(nj) + c2;
                c2 = q >> 32;
                if let Some(d) = t.get_mut(j - 1) {
                    *d = q as u32;
                }
            }
        }
        let tk = u64::from(t.get(k).copied().unwrap_or(0));
        let s = tk + c1 + c2;
        if let Some(d) = t.get_mut(k - 1) {
            *d = s as u32;
        }
        if let Some(d) = t.get_mut(k) {
            *d = (s >> 32) as u32;
        }
    }
    if let Some(lo) = t.get(..k) {
        x.copy_from_slice(lo);
    }
    if t.get(k).copied().unwrap_or(0) != 0 || ge(x, n) {
        sub(x, n);
    }
}

pub fn exp_cios(key: &Key, s: &[u32]) -> Vec<u32> {
    let k = key.n.len();
    let mut t = vec![0u32; k + 1];
    let mut acc = s.to_vec();
    cios(&mut acc, &key.rr, &key.n, key.n0inv, &mut t);
    for _ in 0..16 {
        let a2 = acc.clone();
        cios(&mut acc, &a2, &key.n, key.n0inv, &mut t);
    }
    cios(&mut acc, s, &key.n, key.n0inv, &mut t);
    acc
}

/// CIOS for the multiplications, SOS-index squaring.
pub fn exp_mixed(key: &Key, s: &[u32]) -> Vec<u32> {
    let k = key.n.len();
    let mut t1 = vec![0u32; k + 1];
    let mut t = vec![0u32; 2 * k];
    let mut acc = s.to_vec();
    cios(&mut acc, &key.rr, &key.n, key.n0inv, &mut t1);
    for _ in 0..16 {
        sos_sqr(&mut t, &acc);
        sos_redc(&mut t, &mut acc, &key.n, key.n0inv);
    }
    cios(&mut acc, s, &key.n, key.n0inv, &mut t1);
    acc
}

// ---------- D: u64 limbs with u128 products (SOS index, squaring specialised) ----------

pub struct Key64 {
    pub n: Vec<u64>,
    pub n0inv: u64,
    pub rr: Vec<u64>,
}

pub fn to64(x: &[u32]) -> Vec<u64> {
    x.chunks(2)
        .map(|c| u64::from(c[0]) | (u64::from(*c.get(1).unwrap_or(&0)) << 32))
        .collect()
}
pub fn from64(x: &[u64]) -> Vec<u32> {
    x.iter()
        .flat_map(|&v| [v as u32, (v >> 32) as u32])
        .collect()
}

impl Key64 {
    pub fn new(k: &Key) -> Key64 {
        let n = to64(&k.n);
        let n0 = n[0];
        let mut inv = n0;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        // R differs (2^(64·k64) vs 2^(32·k)) when k is odd; the test keys have even k.
        Key64 {
            n,
            n0inv: inv.wrapping_neg(),
            rr: to64(&k.rr),
        }
    }
}

#[inline(always)]
fn mac64(t: &mut u64, a: u128, b: u64, carry: u128) -> u128 {
    let v = u128::from(*t) + a * u128::from(b) + carry;
    *t = v as u64;
    v >> 64
}

fn ge64(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}
fn sub64(a: &mut [u64], b: &[u64]) {
    let mut br = 0u64;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(br);
        *x = d2;
        br = u64::from(b1 | b2);
    }
}

fn mont64(x: &mut [u64], y: &[u64], key: &Key64, t: &mut [u64]) {
    let n = &key.n;
    let k = n.len();
    t.fill(0);
    for i in 0..k {
        let xi = u128::from(x[i]);
        let row = &mut t[i..i + k + 1];
        let mut c = 0;
        for j in 0..k {
            c = mac64(&mut row[j], xi, y[j], c);
        }
        row[k] = c as u64;
    }
    let mut c2 = 0u128;
    for i in 0..k {
        let row = &mut t[i..i + k + 1];
        let m = u128::from(row[0].wrapping_mul(key.n0inv));
        let mut c = 0;
        for j in 0..k {
            c = mac64(&mut row[j], m, n[j], c);
        }
        let v = u128::from(row[k]) + c + c2;
        row[k] = v as u64;
        c2 = v >> 64;
    }
    x.copy_from_slice(&t[k..2 * k]);
    if c2 != 0 || ge64(x, n) {
        sub64(x, n);
    }
}

pub fn exp_u64(key: &Key64, s: &[u64]) -> Vec<u64> {
    let k = key.n.len();
    let mut t = vec![0u64; 2 * k];
    let mut acc = s.to_vec();
    mont64(&mut acc, &key.rr, key, &mut t);
    for _ in 0..16 {
        let a2 = acc.clone();
        mont64(&mut acc, &a2, key, &mut t);
    }
    mont64(&mut acc, s, key, &mut t);
    acc
}
