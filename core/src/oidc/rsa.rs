//! Verify-only RSA for JWT signatures (RFC 7518 §3.3 and §3.5).
//!
//! * `RS256` / `RS384` / `RS512`: RSASSA-PKCS1-v1_5 ([`RsaPublicKey::verify_pkcs1v15`]).
//! * `PS256` / `PS384` / `PS512`: RSASSA-PSS with MGF1 over the same hash and a salt as
//!   long as the hash, as JOSE requires ([`RsaPublicKey::verify_pss`]).
//!
//! The work that depends only on the key is done once, when the key is loaded
//! ([`RsaPublicKey::from_components`]): the modulus is turned into 32-bit limbs and the
//! Montgomery constants (`-n⁻¹ mod 2³²` and `R² mod n`) are computed. Checking a
//! signature is then one public exponentiation (for `e = 65537`: one conversion into
//! Montgomery form, 16 Montgomery squarings and one Montgomery multiplication that also
//! leaves Montgomery form) followed by the padding check.
//!
//! Limbs are `u32` and products are taken in `u64` because WebAssembly, the target this
//! is written for, has no 64×64→128-bit multiplication. Everything here handles public
//! data only (public key, signature, signed message), so the exponentiation is not
//! constant-time; the final comparisons use [`subtle`] anyway.
//!
//! Accepted keys: a modulus of 2048 to 8192 bits (leading zero bytes ignored) that is odd,
//! and a public exponent that is odd, greater than 1 and below 2³². A signature must be
//! exactly as long as the modulus in bytes and, read as a number, smaller than the modulus.
//!
//! The code is `no_std` + `alloc`, has no `unsafe`, and has no panicking path: no
//! indexing, no `unwrap`, and arithmetic that cannot overflow (checked with overflow
//! checks on in the tests).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use sha2::digest::Digest;
use sha2::{Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

/// Smallest accepted modulus, in bits.
pub const MIN_MODULUS_BITS: usize = 2048;
/// Largest accepted modulus, in bits.
pub const MAX_MODULUS_BITS: usize = 8192;

/// The hash function of a JWT RSA algorithm (`RS256`/`PS256` use [`Hash::Sha256`], …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    /// SHA-256 (`RS256`, `PS256`).
    Sha256,
    /// SHA-384 (`RS384`, `PS384`).
    Sha384,
    /// SHA-512 (`RS512`, `PS512`).
    Sha512,
}

impl Hash {
    /// Length of the hash output in bytes (also the PSS salt length JOSE uses).
    pub const fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// DER encoding of `DigestInfo` up to (not including) the hash value,
    /// RFC 8017 §9.2 note 1. Parameters are an explicit NULL, as RFC 8017 requires.
    const fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// Why a public key was refused by [`RsaPublicKey::from_components`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKeyError {
    /// The modulus has fewer than [`MIN_MODULUS_BITS`] bits.
    ModulusTooSmall,
    /// The modulus has more than [`MAX_MODULUS_BITS`] bits.
    ModulusTooLarge,
    /// The modulus is even (not an RSA modulus).
    ModulusEven,
    /// The public exponent is 0 or 1.
    ExponentTooSmall,
    /// The public exponent is 2³² or more.
    ExponentTooLarge,
    /// The public exponent is even.
    ExponentEven,
}

impl fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RsaKeyError::ModulusTooSmall => "RSA modulus smaller than 2048 bits",
            RsaKeyError::ModulusTooLarge => "RSA modulus larger than 8192 bits",
            RsaKeyError::ModulusEven => "RSA modulus is even",
            RsaKeyError::ExponentTooSmall => "RSA public exponent is 0 or 1",
            RsaKeyError::ExponentTooLarge => "RSA public exponent is 2^32 or more",
            RsaKeyError::ExponentEven => "RSA public exponent is even",
        })
    }
}

/// An RSA public key prepared for signature verification.
///
/// Build it once per JWKS key with [`RsaPublicKey::from_components`]; each verification
/// then costs one public exponentiation plus one or two hash computations.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// Modulus, little-endian 32-bit limbs, `k` limbs.
    n: Vec<u32>,
    /// `-n⁻¹ mod 2³²`.
    n0inv: u32,
    /// `R² mod n` with `R = 2^(32k)`, little-endian limbs.
    rr: Vec<u32>,
    /// Public exponent (odd, > 1).
    e: u32,
    /// Size of the modulus in bits.
    bits: usize,
    /// Size of the modulus in bytes (also the signature length).
    len: usize,
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.bits)
            .field("e", &self.e)
            .finish_non_exhaustive()
    }
}

impl RsaPublicKey {
    /// Prepares a public key from its big-endian modulus and exponent, as found
    /// (base64url-decoded) in the `n` and `e` members of an RSA JWK.
    ///
    /// Leading zero bytes are ignored. The modulus must have 2048 to 8192 bits and be
    /// odd; the exponent must be odd, greater than 1 and below 2³².
    pub fn from_components(n_be: &[u8], e_be: &[u8]) -> Result<Self, RsaKeyError> {
        let n_be = strip_leading_zeros(n_be);
        let bits = bit_length_be(n_be);
        if bits < MIN_MODULUS_BITS {
            return Err(RsaKeyError::ModulusTooSmall);
        }
        if bits > MAX_MODULUS_BITS {
            return Err(RsaKeyError::ModulusTooLarge);
        }
        if n_be.last().is_none_or(|b| b & 1 == 0) {
            return Err(RsaKeyError::ModulusEven);
        }

        let e_be = strip_leading_zeros(e_be);
        if e_be.len() > 4 {
            return Err(RsaKeyError::ExponentTooLarge);
        }
        let e = e_be.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        if e <= 1 {
            return Err(RsaKeyError::ExponentTooSmall);
        }
        if e & 1 == 0 {
            return Err(RsaKeyError::ExponentEven);
        }

        let k = bits.div_ceil(32);
        let n = limbs_from_be(n_be, k);
        let n0inv = neg_inv_u32(n.first().copied().unwrap_or(1));
        let rr = r_squared(&n, n0inv, bits);
        Ok(Self {
            n,
            n0inv,
            rr,
            e,
            bits,
            len: n_be.len(),
        })
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Size of the modulus in bytes: the length every signature must have.
    pub fn size(&self) -> usize {
        self.len
    }

    /// The public exponent.
    pub fn exponent(&self) -> u32 {
        self.e
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature (RFC 8017 §8.2.2) of `msg`
    /// (for a JWT: the ASCII `header.payload`) made with `hash`.
    ///
    /// The expected encoded message `00 01 FF…FF 00 ‖ DigestInfo(hash(msg))` is built and
    /// compared in constant time with the one recovered from the signature, so only the
    /// single DER encoding RFC 8017 specifies is accepted (no BER variants, no missing
    /// NULL parameters).
    pub fn verify_pkcs1v15(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.rsavp1(sig) else {
            return false;
        };
        let digest = match hash {
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha384 => Sha384::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        };
        let prefix = hash.digest_info_prefix();
        let t_len = prefix.len().saturating_add(digest.len());
        // k >= tLen + 11, i.e. at least 8 bytes of 0xFF padding.
        let Some(ps_len) = self.len.checked_sub(t_len.saturating_add(3)) else {
            return false;
        };
        if ps_len < 8 {
            return false;
        }
        let mut expected = Vec::with_capacity(self.len);
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(ps_len.saturating_add(2), 0xff);
        expected.push(0x00);
        expected.extend_from_slice(prefix);
        expected.extend_from_slice(&digest);
        expected.as_slice().ct_eq(em.as_slice()).into()
    }

    /// Verifies an RSASSA-PSS signature (RFC 8017 §8.1.2) of `msg` made with `hash`,
    /// MGF1 over the same hash and a salt of the hash's length (RFC 7518 §3.5).
    pub fn verify_pss(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.rsavp1(sig) else {
            return false;
        };
        let Some(em_bits) = self.bits.checked_sub(1) else {
            return false;
        };
        let s_len = hash.output_len();
        match hash {
            Hash::Sha256 => emsa_pss_verify::<Sha256>(msg, &em, em_bits, s_len),
            Hash::Sha384 => emsa_pss_verify::<Sha384>(msg, &em, em_bits, s_len),
            Hash::Sha512 => emsa_pss_verify::<Sha512>(msg, &em, em_bits, s_len),
        }
    }

    /// RSAVP1 (RFC 8017 §5.2.2) with I2OSP into `k` bytes: `None` when the signature does
    /// not have the modulus's length or is not smaller than the modulus.
    fn rsavp1(&self, sig: &[u8]) -> Option<Vec<u8>> {
        if sig.len() != self.len {
            return None;
        }
        let s = limbs_from_be(sig, self.n.len());
        if !less_than(&s, &self.n) {
            return None;
        }
        let m = self.public_op(&s);
        let mut em = vec![0u8; self.len];
        limbs_to_be(&m, &mut em);
        Some(em)
    }

    /// `s^e mod n` for `s < n`, left-to-right binary exponentiation in Montgomery form.
    fn public_op(&self, s: &[u32]) -> Vec<u32> {
        let mut mont = Mont::new(&self.n, self.n0inv);
        // acc = s·R mod n
        let mut acc = s.to_vec();
        mont.mul_assign(&mut acc, &self.rr);
        let base = acc.clone();
        // Bits of e from just below the top bit down to bit 1; e has at least two bits.
        let top = 31u32.saturating_sub(self.e.leading_zeros());
        for i in (1..top).rev() {
            mont.sqr_assign(&mut acc);
            if (self.e >> i) & 1 == 1 {
                mont.mul_assign(&mut acc, &base);
            }
        }
        // Bit 0 is set (e is odd): square, then multiply by plain s, which also leaves
        // Montgomery form: (s^(e-1)·R)·s·R⁻¹ = s^e.
        mont.sqr_assign(&mut acc);
        mont.mul_assign(&mut acc, s);
        acc
    }
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with MGF1 over `D` and a salt of `s_len` bytes.
/// `em_full` is the `k`-byte output of RSAVP1; its leading bytes beyond
/// `emLen = ⌈emBits/8⌉` must be zero (I2OSP into `emLen` bytes).
fn emsa_pss_verify<D: Digest>(msg: &[u8], em_full: &[u8], em_bits: usize, s_len: usize) -> bool {
    let h_len = <D as Digest>::output_size();
    let em_len = em_bits.div_ceil(8);
    let Some(skip) = em_full.len().checked_sub(em_len) else {
        return false;
    };
    let Some((lead, em)) = em_full.split_at_checked(skip) else {
        return false;
    };
    if lead.iter().any(|&b| b != 0) {
        return false;
    }
    // Step 2.
    let m_hash = D::digest(msg);
    // Step 3: emLen >= hLen + sLen + 2.
    let Some(ps_len) = em_len
        .checked_sub(h_len)
        .and_then(|x| x.checked_sub(s_len))
        .and_then(|x| x.checked_sub(2))
    else {
        return false;
    };
    // Step 4.
    let Some((&last, rest)) = em.split_last() else {
        return false;
    };
    if last != 0xbc {
        return false;
    }
    // Step 5: maskedDB (emLen - hLen - 1 bytes) ‖ H (hLen bytes).
    let Some(db_len) = em_len.checked_sub(h_len).and_then(|x| x.checked_sub(1)) else {
        return false;
    };
    let Some((masked_db, h)) = rest.split_at_checked(db_len) else {
        return false;
    };
    // Step 6: the leftmost 8·emLen - emBits bits of maskedDB must be zero.
    let zero_bits = em_len.saturating_mul(8).saturating_sub(em_bits);
    let top_mask = u8::MAX
        .checked_shr(u32::try_from(zero_bits).unwrap_or(u32::MAX))
        .unwrap_or(0);
    let Some(&first) = masked_db.first() else {
        return false;
    };
    if first & !top_mask != 0 {
        return false;
    }
    // Steps 7–9.
    let mut db = masked_db.to_vec();
    mgf1_xor::<D>(h, &mut db);
    if let Some(b) = db.first_mut() {
        *b &= top_mask;
    }
    // Step 10: DB = PS (zeros) ‖ 0x01 ‖ salt.
    let Some((ps, rest)) = db.split_at_checked(ps_len) else {
        return false;
    };
    if ps.iter().any(|&b| b != 0) {
        return false;
    }
    let Some((&one, salt)) = rest.split_first() else {
        return false;
    };
    if one != 0x01 || salt.len() != s_len {
        return false;
    }
    // Steps 12–14: H' = Hash(0x00 × 8 ‖ mHash ‖ salt) must equal H.
    let h2 = D::new()
        .chain_update([0u8; 8])
        .chain_update(&m_hash)
        .chain_update(salt)
        .finalize();
    let h2: &[u8] = &h2;
    h2.ct_eq(h).into()
}

/// XORs MGF1(`seed`, `out.len()`) over `D` (RFC 8017 §B.2.1) into `out`.
fn mgf1_xor<D: Digest>(seed: &[u8], out: &mut [u8]) {
    let h_len = <D as Digest>::output_size().max(1);
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(h_len)) {
        let block = D::new()
            .chain_update(seed)
            .chain_update(counter.to_be_bytes())
            .finalize();
        for (o, m) in chunk.iter_mut().zip(block.iter()) {
            *o ^= m;
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.get(zeros..).unwrap_or(&[])
}

/// Bit length of a big-endian number whose first byte is non-zero (0 for empty input).
fn bit_length_be(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(&top) => bytes
            .len()
            .saturating_sub(1)
            .saturating_mul(8)
            .saturating_add(8usize.saturating_sub(top.leading_zeros() as usize)),
    }
}

/// Big-endian bytes to `k` little-endian 32-bit limbs (bytes beyond `4k` are dropped;
/// callers pass at most `4k` bytes).
fn limbs_from_be(bytes: &[u8], k: usize) -> Vec<u32> {
    let mut limbs = vec![0u32; k];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.rchunks(4)) {
        *limb = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    }
    limbs
}

/// Little-endian limbs to big-endian bytes filling `out` (higher limb bytes that do not
/// fit are dropped; callers pass a value below the modulus, so they are zero).
fn limbs_to_be(limbs: &[u32], out: &mut [u8]) {
    for (chunk, limb) in out.rchunks_mut(4).zip(limbs) {
        let bytes = limb.to_be_bytes();
        for (dst, src) in chunk.iter_mut().rev().zip(bytes.iter().rev()) {
            *dst = *src;
        }
    }
}

/// `a < b` for equally long little-endian limb slices.
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b` (little-endian, same length), wrapping modulo `2^(32·len)`.
fn sub_assign(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(borrow);
        *x = d2;
        borrow = u32::from(b1 | b2);
    }
}

/// `-n0⁻¹ mod 2³²` for odd `n0` (Newton iteration: 3 → 6 → 12 → 24 → 48 correct bits).
fn neg_inv_u32(n0: u32) -> u32 {
    let mut inv = n0; // n0·n0 ≡ 1 (mod 8) for odd n0
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// `x = 2x mod n` for `x < n`.
fn mod_double(x: &mut [u32], n: &[u32]) {
    let mut carry = 0u32;
    for limb in x.iter_mut() {
        let next = *limb >> 31;
        *limb = (*limb << 1) | carry;
        carry = next;
    }
    if carry != 0 || !less_than(x, n) {
        sub_assign(x, n);
    }
}

/// `R² mod n` for `R = 2^(32k)`, `k = n.len()`, `bits` = bit length of `n`.
fn r_squared(n: &[u32], n0inv: u32, bits: usize) -> Vec<u32> {
    let k = n.len();
    let r_bits = k.saturating_mul(32);
    // x = 2^(bits-1) < n.
    let mut x = vec![0u32; k];
    let top = bits.saturating_sub(1);
    if let Some(limb) = x.get_mut(top / 32) {
        *limb = 1u32 << (top % 32);
    }
    // Double up to R mod n = 2^(32k) mod n: the Montgomery form of 1.
    for _ in top..r_bits {
        mod_double(&mut x, n);
    }
    // Montgomery form of 2^j, from j = 1 up to j = 32k, by square-and-double over the
    // bits of 32k: the Montgomery form of 2^(32k) = R is R·R mod n.
    mod_double(&mut x, n);
    let mut mont = Mont::new(n, n0inv);
    let hi = usize::BITS
        .saturating_sub(1)
        .saturating_sub(r_bits.leading_zeros());
    for i in (0..hi).rev() {
        mont.sqr_assign(&mut x);
        if (r_bits >> i) & 1 == 1 {
            mod_double(&mut x, n);
        }
    }
    x
}

/// Montgomery arithmetic modulo `n` (odd, `k` limbs) with `R = 2^(32k)`, using a
/// `2k`-limb scratch product (separated operand scanning: full product, then reduction).
///
/// The inner loop is [`mac_row`].
struct Mont<'a> {
    n: &'a [u32],
    n0inv: u32,
    t: Vec<u32>,
}

impl<'a> Mont<'a> {
    fn new(n: &'a [u32], n0inv: u32) -> Self {
        Self {
            n,
            n0inv,
            t: vec![0u32; n.len().saturating_mul(2)],
        }
    }

    /// `x = x·y·R⁻¹ mod n` for `x, y < n` (all of `k` limbs).
    fn mul_assign(&mut self, x: &mut [u32], y: &[u32]) {
        mul_into(&mut self.t, x, y);
        self.reduce_into(x);
    }

    /// `x = x²·R⁻¹ mod n` for `x < n`.
    fn sqr_assign(&mut self, x: &mut [u32]) {
        sqr_into(&mut self.t, x);
        self.reduce_into(x);
    }

    /// Montgomery reduction of the `2k`-limb product in `self.t` into `out`:
    /// `out = t·R⁻¹ mod n` for `t < n·R`.
    fn reduce_into(&mut self, out: &mut [u32]) {
        let n = self.n;
        let k = n.len();
        // Carry out of limb i + k, added into limb i + k + 1 at the next row.
        let mut c2 = 0u64;
        for i in 0..k {
            let Some(row) = self.t.get_mut(i..i.saturating_add(k).saturating_add(1)) else {
                break;
            };
            let m = u64::from(row.first().copied().unwrap_or(0).wrapping_mul(self.n0inv));
            let (carry, rest) = mac_row(row, m, n);
            if let Some(tk) = rest.first_mut() {
                let v = u64::from(*tk) + carry + c2;
                *tk = v as u32;
                c2 = v >> 32;
            }
        }
        // Result: t[k..2k] + c2·R, which is below 2n.
        for i in 0..k {
            if let (Some(o), Some(&v)) = (out.get_mut(i), self.t.get(i.saturating_add(k))) {
                *o = v;
            }
        }
        if c2 != 0 || !less_than(out, n) {
            sub_assign(out, n);
        }
    }
}

/// `row[j] += a·b[j]` for `j < b.len()` with carry propagation. Returns the final carry
/// and the rest of `row` after the first `b.len()` limbs (`row` must be at least that long;
/// a shorter `row` just ends the loop early).
///
/// Written as slice-pattern matching rather than `zip` or indexing: it needs no bounds
/// checks and no helper calls even at `opt-level = "z"` (where `Zip::next` is not
/// inlined, which made the iterator form ~7× slower in wasm).
#[inline(always)]
fn mac_row<'r>(mut row: &'r mut [u32], a: u64, mut b: &[u32]) -> (u64, &'r mut [u32]) {
    let mut carry = 0u64;
    loop {
        match (row, b) {
            ([tj, row_rest @ ..], [bj, b_rest @ ..]) => {
                // (2³²-1) + (2³²-1)² + (2³²-1) = 2⁶⁴-1: no overflow.
                let v = u64::from(*tj) + a * u64::from(*bj) + carry;
                *tj = v as u32;
                carry = v >> 32;
                row = row_rest;
                b = b_rest;
            }
            (rest, _) => return (carry, rest),
        }
    }
}

/// `t = a·b` (schoolbook), `a` and `b` of `k` limbs, `t` of `2k` limbs.
fn mul_into(t: &mut [u32], a: &[u32], b: &[u32]) {
    let k = b.len();
    t.fill(0);
    for i in 0..a.len() {
        let ai = u64::from(a.get(i).copied().unwrap_or(0));
        let Some(row) = t.get_mut(i..i.saturating_add(k).saturating_add(1)) else {
            break;
        };
        let (carry, rest) = mac_row(row, ai, b);
        // t[i + k] has not been written by earlier rows.
        if let Some(top) = rest.first_mut() {
            *top = carry as u32;
        }
    }
}

/// `t = a²`, `a` of `k` limbs, `t` of `2k` limbs: the cross products once, doubled,
/// plus the squares on the diagonal.
fn sqr_into(t: &mut [u32], a: &[u32]) {
    let k = a.len();
    t.fill(0);
    for i in 0..k {
        let ai = u64::from(a.get(i).copied().unwrap_or(0));
        let rest = a.get(i.saturating_add(1)..).unwrap_or(&[]);
        let lo = i.saturating_mul(2).saturating_add(1);
        let Some(row) = t.get_mut(lo..i.saturating_add(k).saturating_add(1)) else {
            break;
        };
        let (carry, row_rest) = mac_row(row, ai, rest);
        // t[i + k] has not been written by earlier rows.
        if let Some(top) = row_rest.first_mut() {
            *top = carry as u32;
        }
    }
    let mut carry = 0u64;
    for i in 0..k {
        let ai = u64::from(a.get(i).copied().unwrap_or(0));
        let sq = ai * ai;
        let lo = i.saturating_mul(2);
        if let Some([tl, th]) = t.get_mut(lo..lo.saturating_add(2)) {
            let l = (u64::from(*tl) << 1) + (sq & 0xffff_ffff) + carry;
            *tl = l as u32;
            let h = (u64::from(*th) << 1) + (sq >> 32) + (l >> 32);
            *th = h as u32;
            carry = h >> 32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_inv_is_correct() {
        for n0 in [1u32, 3, 5, 0xffff_ffff, 0x1234_5679, 0x8000_0001] {
            assert_eq!(n0.wrapping_mul(neg_inv_u32(n0)), u32::MAX);
        }
    }

    #[test]
    fn refuses_bad_components() {
        let mut n = vec![0xffu8; 256];
        assert_eq!(
            RsaPublicKey::from_components(&n[1..], &[1, 0, 1]),
            Err(RsaKeyError::ModulusTooSmall)
        );
        assert_eq!(
            RsaPublicKey::from_components(&[0xffu8; 1025], &[1, 0, 1]),
            Err(RsaKeyError::ModulusTooLarge)
        );
        assert!(RsaPublicKey::from_components(&[0xffu8; 1024], &[1, 0, 1]).is_ok());
        assert_eq!(
            RsaPublicKey::from_components(&[], &[1, 0, 1]),
            Err(RsaKeyError::ModulusTooSmall)
        );
        if let Some(last) = n.last_mut() {
            *last = 0xfe;
        }
        assert_eq!(
            RsaPublicKey::from_components(&n, &[1, 0, 1]),
            Err(RsaKeyError::ModulusEven)
        );
        let n = [0xffu8; 256];
        assert_eq!(
            RsaPublicKey::from_components(&n, &[]),
            Err(RsaKeyError::ExponentTooSmall)
        );
        assert_eq!(
            RsaPublicKey::from_components(&n, &[0, 0, 1]),
            Err(RsaKeyError::ExponentTooSmall)
        );
        assert_eq!(
            RsaPublicKey::from_components(&n, &[1, 0, 0, 0, 1]),
            Err(RsaKeyError::ExponentTooLarge)
        );
        assert_eq!(
            RsaPublicKey::from_components(&n, &[1, 0, 0]),
            Err(RsaKeyError::ExponentEven)
        );
        let key = RsaPublicKey::from_components(&[&[0u8, 0][..], &n[..]].concat(), &[0, 3]);
        assert!(
            matches!(key, Ok(ref k) if k.bits() == 2048 && k.size() == 256 && k.exponent() == 3)
        );
    }

    #[test]
    fn rejects_bad_signature_shapes() {
        let n = [0xffu8; 256];
        let Ok(key) = RsaPublicKey::from_components(&n, &[1, 0, 1]) else {
            unreachable!()
        };
        for sig in [
            &[][..],
            &[0u8; 255][..],
            &[0u8; 257][..],
            &[0xffu8; 256][..],
        ] {
            assert!(!key.verify_pkcs1v15(Hash::Sha256, b"x", sig));
            assert!(!key.verify_pss(Hash::Sha256, b"x", sig));
        }
        // s = 0 and s = 1 are below n but never valid paddings.
        let mut one = [0u8; 256];
        assert!(!key.verify_pkcs1v15(Hash::Sha256, b"x", &one));
        if let Some(l) = one.last_mut() {
            *l = 1;
        }
        assert!(!key.verify_pkcs1v15(Hash::Sha512, b"x", &one));
        assert!(!key.verify_pss(Hash::Sha512, b"x", &one));
    }

    /// Small-number check of the Montgomery arithmetic against `u128` arithmetic,
    /// including R² mod n for a 2048-bit modulus whose top bits are arbitrary.
    #[test]
    fn r_squared_and_public_op_match_reference() {
        // n = 2^2048 - 159 style modulus: check s^e mod n for small s using the identity
        // that for s = 2, 2^e mod n with e < 2048 is just 2^e.
        let mut n_be = [0xffu8; 256];
        if let Some(l) = n_be.last_mut() {
            *l = 0x61;
        }
        for e in [3u32, 17, 65537] {
            let Ok(key) = RsaPublicKey::from_components(&n_be, &e.to_be_bytes()) else {
                unreachable!()
            };
            let mut s = vec![0u32; key.n.len()];
            if let Some(l) = s.first_mut() {
                *l = 2;
            }
            let m = key.public_op(&s);
            // 2^e mod n, by repeated doubling.
            let mut want = vec![0u32; key.n.len()];
            if let Some(l) = want.first_mut() {
                *l = 1;
            }
            for _ in 0..e {
                mod_double(&mut want, &key.n);
            }
            assert_eq!(m, want, "e = {e}");
        }
    }
}
