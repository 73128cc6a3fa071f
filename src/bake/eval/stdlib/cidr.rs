//! IP network functions for IPv4 and IPv6: cidrhost, cidrnetmask, cidrsubnet,
//! cidrsubnets. Addresses are handled as 128-bit integers with a bit width of 32 or 128.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::args::{integer, string, WHOLE};
use super::FuncError;
use crate::bake::eval::value::Value;

/// A parsed network: its first address, prefix length and address width in bits.
#[derive(Clone, Copy)]
struct Net {
    addr: u128,
    len: u32,
    bits: u32,
}

fn ones(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The network mask of a prefix length.
fn mask(len: u32, bits: u32) -> u128 {
    if len == 0 {
        return 0;
    }
    let host = bits.saturating_sub(len);
    ones(bits) & !ones(host)
}

/// The host part of a prefix length.
fn host_mask(len: u32, bits: u32) -> u128 {
    ones(bits) & !mask(len, bits)
}

fn parse_cidr(s: &str) -> Result<Net, FuncError> {
    let bad = || {
        FuncError::new(format!(
            "invalid CIDR expression: invalid CIDR address: {s}"
        ))
    };
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u32 = len.parse().map_err(|_| bad())?;
    let (addr, bits) = if let Ok(v4) = ip.parse::<Ipv4Addr>() {
        (u128::from(u32::from(v4)), 32)
    } else if let Ok(v6) = ip.parse::<Ipv6Addr>() {
        (u128::from(v6), 128)
    } else {
        return Err(bad());
    };
    if len > bits {
        return Err(bad());
    }
    Ok(Net {
        addr: addr & mask(len, bits),
        len,
        bits,
    })
}

fn fmt_addr(addr: u128, bits: u32) -> String {
    // Go prints IPv4-mapped IPv6 addresses in dotted form
    if bits == 32 || addr >> 32 == 0xffff {
        Ipv4Addr::from(addr as u32).to_string()
    } else {
        Ipv6Addr::from(addr).to_string()
    }
}

fn fmt_net(n: Net) -> String {
    format!("{}/{}", fmt_addr(n.addr, n.bits), n.len)
}

pub(super) fn cidrhost(a: &[Value]) -> Result<Value, FuncError> {
    let prefix = string(a, 0)?;
    let num = integer(a, 1).map_err(|_| FuncError::new(WHOLE))?;
    let net = parse_cidr(&prefix)?;
    let max = host_mask(net.len, net.bits);
    let host: Option<u128> = if num < 0 {
        // -1 is the last address of the prefix
        max.checked_add(1)
            .and_then(|m| m.checked_sub(num.unsigned_abs() as u128))
            .or_else(|| {
                (net.bits - net.len == 128).then(|| u128::MAX - (num.unsigned_abs() as u128 - 1))
            })
    } else {
        Some(num as u128).filter(|n| *n <= max)
    };
    let host = host.ok_or_else(|| {
        FuncError::new(format!(
            "prefix of {} does not accommodate a host numbered {num}",
            net.len
        ))
    })?;
    Ok(Value::String(fmt_addr(net.addr | host, net.bits)))
}

pub(super) fn cidrnetmask(a: &[Value]) -> Result<Value, FuncError> {
    let prefix = string(a, 0)?;
    let net = parse_cidr(&prefix)?;
    Ok(Value::String(fmt_addr(mask(net.len, net.bits), net.bits)))
}

pub(super) fn cidrsubnet(a: &[Value]) -> Result<Value, FuncError> {
    let prefix = string(a, 0)?;
    let newbits = integer(a, 1).map_err(|_| FuncError::new(WHOLE))?;
    let netnum = integer(a, 2).map_err(|_| FuncError::new(WHOLE))?;
    let net = parse_cidr(&prefix)?;
    if newbits > 32 {
        return Err(FuncError::new("may not extend prefix by more than 32 bits"));
    }
    let new_len = net.len as i64 + newbits;
    if newbits < 0 || new_len > net.bits as i64 {
        return Err(FuncError::new(format!(
            "insufficient address space to extend prefix of {} by {newbits}",
            net.len
        )));
    }
    let max_num: u64 = (1u64 << newbits) - 1;
    if netnum < 0 || netnum as u64 > max_num {
        return Err(FuncError::new(format!(
            "prefix extension of {newbits} does not accommodate a subnet numbered {netnum}"
        )));
    }
    let new_len = new_len as u32;
    let shift = net.bits - new_len;
    let addr = net.addr | ((netnum as u128).checked_shl(shift).unwrap_or(0));
    Ok(Value::String(fmt_net(Net {
        addr,
        len: new_len,
        bits: net.bits,
    })))
}

fn last_addr(n: Net) -> u128 {
    n.addr | host_mask(n.len, n.bits)
}

pub(super) fn cidrsubnets(a: &[Value]) -> Result<Value, FuncError> {
    let prefix = string(a, 0)?;
    let net = parse_cidr(&prefix).map_err(|e| FuncError::arg(0, e.message))?;
    if a.len() == 1 {
        return Ok(Value::List(vec![]));
    }
    let all = ones(net.bits);
    let first = integer(a, 1)?;
    let first_len = (net.len as i64)
        .saturating_add(first)
        .clamp(0, net.bits as i64) as u32;
    // the subnet of the first length just before the base prefix
    let before = net.addr.wrapping_sub(1) & all;
    let mut current = Net {
        addr: before & mask(first_len, net.bits),
        len: first_len,
        bits: net.bits,
    };
    let mut out = Vec::with_capacity(a.len() - 1);
    for i in 1..a.len() {
        let n = integer(a, i)?;
        if n < 1 {
            return Err(FuncError::arg(i, "must extend prefix by at least one bit"));
        }
        if n > 32 {
            return Err(FuncError::arg(
                i,
                "may not extend prefix by more than 32 bits",
            ));
        }
        let len = net.len as i64 + n;
        if len > net.bits as i64 {
            let proto = if net.bits == 32 { "IPv4" } else { "IPv6" };
            return Err(FuncError::arg(
                i,
                format!(
                    "would extend prefix to {len} bits, which is too long for an {proto} address"
                ),
            ));
        }
        let len = len as u32;
        let m = mask(len, net.bits);
        let containing = Net {
            addr: last_addr(current) & m,
            len,
            bits: net.bits,
        };
        let after = last_addr(containing).wrapping_add(1) & all;
        let next = Net {
            addr: after & m,
            len,
            bits: net.bits,
        };
        let rollover = after == 0;
        if rollover || (next.addr & mask(net.len, net.bits)) != net.addr {
            return Err(FuncError::arg(
                i,
                format!(
                    "not enough remaining address space for a subnet with a prefix of {len} bits after {}",
                    fmt_net(current)
                ),
            ));
        }
        current = next;
        out.push(Value::String(fmt_net(current)));
    }
    Ok(Value::List(out))
}
