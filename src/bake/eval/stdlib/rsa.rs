//! `rsadecrypt(ciphertext, privatekey)`: PKCS#1 v1.5 decryption with a PEM "RSA PRIVATE
//! KEY" (PKCS#1), as go-cty-funcs does. Small self-contained pieces: a PEM reader, a DER
//! reader for the key's integers, and Montgomery modular exponentiation on u64 limbs.

use super::args::string;
use super::encoding::go_base64_decode;
use super::FuncError;
use crate::bake::eval::value::Value;

/// Largest modulus accepted (bits); real keys are 2048-4096.
const MAX_BITS: usize = 16384;

const DECRYPTION_ERROR: &str = "crypto/rsa: decryption error";

/// The first PEM block: (type, has "Proc-Type: 4,ENCRYPTED", DER bytes).
fn pem_decode(text: &str) -> Option<(String, bool, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let body = &rest[..body_end];
    let mut encrypted = false;
    let mut b64 = String::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim() == "Proc-Type" && v.trim() == "4,ENCRYPTED" {
                encrypted = true;
            }
            continue;
        }
        b64.push_str(line);
    }
    let der = go_base64_decode(&b64)?;
    Some((label.to_string(), encrypted, der))
}

/// Reads one DER element: (tag, contents, rest).
fn der_element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((tag, b.get(hdr..end)?, b.get(end..)?))
}

/// The integers of a PKCS#1 RSAPrivateKey: version, n, e, d, ...
fn pkcs1_integers(der: &[u8]) -> Option<Vec<&[u8]>> {
    let (tag, body, _) = der_element(der)?;
    if tag != 0x30 {
        return None;
    }
    let mut ints = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (t, v, r) = der_element(rest)?;
        if t == 0x02 {
            ints.push(v);
        }
        rest = r;
    }
    (ints.len() >= 4).then_some(ints)
}

/// Big-endian bytes -> little-endian u64 limbs (leading zeros dropped).
fn limbs(be: &[u8]) -> Vec<u64> {
    let trimmed: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = Vec::with_capacity(trimmed.len() / 8 + 1);
    for chunk in trimmed.rchunks(8) {
        let mut x = 0u64;
        for b in chunk {
            x = (x << 8) | u64::from(*b);
        }
        out.push(x);
    }
    out
}

fn geq(a: &[u64], b: &[u64]) -> bool {
    for i in (0..a.len().max(b.len())).rev() {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        if x != y {
            return x > y;
        }
    }
    true
}

/// a -= b (a >= b, same length as b or longer).
fn sub_in_place(a: &mut [u64], b: &[u64]) {
    let mut borrow = 0u64;
    for (i, x) in a.iter_mut().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        let (d1, o1) = x.overflowing_sub(y);
        let (d2, o2) = d1.overflowing_sub(borrow);
        *x = d2;
        borrow = u64::from(o1 || o2);
    }
}

struct Montgomery {
    n: Vec<u64>,
    n0inv: u64,
    r2: Vec<u64>,
}

impl Montgomery {
    /// `n` must be odd and non-zero.
    fn new(n: Vec<u64>) -> Montgomery {
        let n0 = n[0];
        let mut inv = 1u64;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let s = n.len();
        // R^2 mod n by doubling 1 (2 * 64 * s) times
        let mut r = vec![0u64; s + 1];
        r[0] = 1;
        for _ in 0..(128 * s) {
            let mut carry = 0u64;
            for x in r.iter_mut() {
                let next = *x >> 63;
                *x = (*x << 1) | carry;
                carry = next;
            }
            if geq(&r, &n) {
                sub_in_place(&mut r, &n);
            }
        }
        r.truncate(s);
        Montgomery {
            n,
            n0inv: inv.wrapping_neg(),
            r2: r,
        }
    }

    /// a * b * R^-1 mod n (CIOS).
    fn mul(&self, a: &[u64], b: &[u64]) -> Vec<u64> {
        let s = self.n.len();
        let mut t = vec![0u64; s + 2];
        for i in 0..s {
            let bi = b.get(i).copied().unwrap_or(0);
            let mut c: u128 = 0;
            for (j, tj) in t.iter_mut().enumerate().take(s) {
                let aj = a.get(j).copied().unwrap_or(0);
                let v = u128::from(*tj) + u128::from(aj) * u128::from(bi) + c;
                *tj = v as u64;
                c = v >> 64;
            }
            let v = u128::from(t[s]) + c;
            t[s] = v as u64;
            t[s + 1] = (v >> 64) as u64;
            let m = t[0].wrapping_mul(self.n0inv);
            let v = u128::from(t[0]) + u128::from(m) * u128::from(self.n[0]);
            let mut c = v >> 64;
            for j in 1..s {
                let v = u128::from(t[j]) + u128::from(m) * u128::from(self.n[j]) + c;
                t[j - 1] = v as u64;
                c = v >> 64;
            }
            let v = u128::from(t[s]) + c;
            t[s - 1] = v as u64;
            t[s] = t[s + 1] + (v >> 64) as u64;
        }
        t.truncate(s + 1);
        if geq(&t, &self.n) {
            sub_in_place(&mut t, &self.n);
        }
        t.truncate(s);
        t
    }

    /// base^exp mod n; `base` < n.
    fn pow(&self, base: &[u64], exp: &[u64]) -> Vec<u64> {
        let one = [1u64];
        let mut x = self.mul(&one, &self.r2);
        let b = self.mul(base, &self.r2);
        for limb in exp.iter().rev() {
            for bit in (0..64).rev() {
                x = self.mul(&x, &x);
                if (limb >> bit) & 1 == 1 {
                    x = self.mul(&x, &b);
                }
            }
        }
        self.mul(&x, &one)
    }
}

fn to_bytes(limbs: &[u64], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, limb) in limbs.iter().enumerate() {
        for k in 0..8 {
            let pos = i * 8 + k;
            if pos < len {
                out[len - 1 - pos] = (limb >> (8 * k)) as u8;
            }
        }
    }
    out
}

/// PKCS#1 v1.5 decryption of `c` with modulus `n` and private exponent `d`.
fn decrypt(c: &[u8], n: &[u8], d: &[u8]) -> Result<Vec<u8>, FuncError> {
    let nl = limbs(n);
    let k = n.iter().skip_while(|b| **b == 0).count();
    if nl.is_empty() || nl[0] & 1 == 0 || k < 11 || k * 8 > MAX_BITS || d.len() * 8 > MAX_BITS {
        return Err(FuncError::new(DECRYPTION_ERROR));
    }
    if c.len() > k {
        return Err(FuncError::new(DECRYPTION_ERROR));
    }
    let cl = limbs(c);
    if geq(&cl, &nl) {
        return Err(FuncError::new(DECRYPTION_ERROR));
    }
    let mont = Montgomery::new(nl);
    let m = mont.pow(&cl, &limbs(d));
    let em = to_bytes(&m, k);
    // EM = 0x00 || 0x02 || PS (>= 8 non-zero bytes) || 0x00 || M
    if em.first() != Some(&0) || em.get(1) != Some(&2) {
        return Err(FuncError::new(DECRYPTION_ERROR));
    }
    let sep = em
        .iter()
        .skip(2)
        .position(|b| *b == 0)
        .ok_or_else(|| FuncError::new(DECRYPTION_ERROR))?;
    if sep < 8 {
        return Err(FuncError::new(DECRYPTION_ERROR));
    }
    Ok(em[2 + sep + 1..].to_vec())
}

pub(super) fn rsadecrypt(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let key = string(a, 1)?;
    let c = go_base64_decode(&s).ok_or_else(|| {
        FuncError::new(format!(
            "failed to decode input {s:?}: cipher text must be base64-encoded"
        ))
    })?;
    let (label, encrypted, der) =
        pem_decode(&key).ok_or_else(|| FuncError::new("failed to parse key: no key found"))?;
    if encrypted {
        return Err(FuncError::new("failed to parse key: password protected keys are not supported. Please decrypt the key prior to use"));
    }
    let ints = pkcs1_integers(&der).ok_or_else(|| {
        FuncError::new(if label == "PRIVATE KEY" {
            "x509: failed to parse private key (use ParsePKCS8PrivateKey instead for this key format)"
        } else {
            "x509: failed to parse private key"
        })
    })?;
    // version, n, e, d
    let out = decrypt(&c, ints[1], ints[3])?;
    Ok(Value::String(String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    /// A throwaway 1024-bit key made with `openssl genrsa -traditional` and a message
    /// encrypted with `openssl pkeyutl -encrypt` (PKCS#1 v1.5).
    const KEY: &str = include_str!("testdata/rsa_key.pem");
    const CIPHERTEXT: &str = include_str!("testdata/rsa_ciphertext.b64");

    #[test]
    fn decrypts_openssl_output() {
        let got = rsadecrypt(&[Value::string(CIPHERTEXT.trim()), Value::string(KEY)]);
        assert_eq!(got, Ok(Value::string("Hello, kiln!")));
    }

    #[test]
    fn rejects_bad_input() {
        let err = |c: &str, k: &str| {
            rsadecrypt(&[Value::string(c), Value::string(k)]).map_err(|e| e.message)
        };
        assert_eq!(
            err("!!", KEY),
            Err("failed to decode input \"!!\": cipher text must be base64-encoded".into())
        );
        assert_eq!(
            err(CIPHERTEXT.trim(), "nope"),
            Err("failed to parse key: no key found".into())
        );
        // a valid ciphertext with the wrong padding: flip the last byte
        let mut c = base64::engine::general_purpose::STANDARD
            .decode(CIPHERTEXT.trim())
            .unwrap_or_default();
        if let Some(last) = c.last_mut() {
            *last ^= 1;
        }
        let c = base64::engine::general_purpose::STANDARD.encode(c);
        assert_eq!(err(&c, KEY), Err(DECRYPTION_ERROR.into()));
        let broken = "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n";
        assert!(err(CIPHERTEXT.trim(), broken).is_err());
    }
}
