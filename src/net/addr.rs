//! Socket addresses: weft's [`ToSocketAddrs`], which parses literals in place and resolves
//! host names on the blocking pool, and [`lookup_host`].
//!
//! std's `ToSocketAddrs::to_socket_addrs` calls `getaddrinfo` for any host name, and
//! `getaddrinfo` has no non-blocking form: in a green thread it would stop the whole worker
//! for the length of the lookup (seconds, when a DNS server is slow). A generic
//! `A: std::net::ToSocketAddrs` cannot be asked whether it is a literal before it resolves,
//! so weft's socket constructors take weft's own, sealed `ToSocketAddrs`, implemented for
//! exactly the types std implements it for. Code that passes `"host:80"`, `("host", 80)`, a
//! `SocketAddr` or a `&[SocketAddr]` compiles unchanged. Literals (`"127.0.0.1:80"`,
//! `("::1", 80)`, `SocketAddr`…) are parsed where they are, with no syscall; anything else is
//! looked up with `getaddrinfo` through [`offload`](crate::offload).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::vec;

use crate::blocking::offload;

mod sealed {
    pub trait Sealed {}
}

/// What weft's sockets accept as an address: the same types as [`std::net::ToSocketAddrs`]
/// (`SocketAddr` and its V4/V6 forms, `(IpAddr, u16)` and friends, `(&str, u16)`,
/// `(String, u16)`, `&str` and `String` of the form `host:port`, `&[SocketAddr]`, and
/// references to any of these). IP literals are parsed in place; host names are resolved on
/// the blocking pool, so a lookup never stalls the worker (see the
/// [module docs](crate::net#name-resolution)).
///
/// It is sealed: weft relies on knowing which values are literals.
pub trait ToSocketAddrs: sealed::Sealed {
    /// The addresses this value stands for, resolving host names on the blocking pool.
    #[doc(hidden)]
    fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>>;
}

/// Resolves `host:port` with the system resolver on the blocking pool, unless `host` is an
/// IP literal.
fn resolve(host: &str, port: u16) -> io::Result<vec::IntoIter<SocketAddr>> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(vec![SocketAddr::from((ip, port))].into_iter());
    }
    if let Ok(ip) = host.parse::<Ipv6Addr>() {
        return Ok(vec![SocketAddr::from((ip, port))].into_iter());
    }
    offload(|| {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(|addrs| {
            // Collected on the pool thread: the iterator is the resolver's own list.
            addrs.collect::<Vec<_>>().into_iter()
        })
    })
}

fn one(addr: SocketAddr) -> io::Result<vec::IntoIter<SocketAddr>> {
    Ok(vec![addr].into_iter())
}

macro_rules! literal {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}
        impl ToSocketAddrs for $ty {
            fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
                one(SocketAddr::from(*self))
            }
        }
    )*};
}

literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for (&str, u16) {}
impl ToSocketAddrs for (&str, u16) {
    fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        resolve(self.0, self.1)
    }
}

impl sealed::Sealed for (String, u16) {}
impl ToSocketAddrs for (String, u16) {
    fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        resolve(&self.0, self.1)
    }
}

impl sealed::Sealed for str {}
impl ToSocketAddrs for str {
    fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return one(addr);
        }
        // std's errors for a malformed `host:port`, without a lookup.
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid("invalid socket address"))?;
        let port: u16 = port.parse().map_err(|_| invalid("invalid port value"))?;
        resolve(host, port)
    }
}

impl sealed::Sealed for String {}
impl ToSocketAddrs for String {
    fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        self.as_str().weft_resolve()
    }
}

impl sealed::Sealed for [SocketAddr] {}
impl ToSocketAddrs for [SocketAddr] {
    fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        let addrs: Vec<SocketAddr> = self.to_vec();
        Ok(addrs.into_iter())
    }
}

impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn weft_resolve(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        (**self).weft_resolve()
    }
}

/// Resolves `host` to socket addresses, like `std::net::ToSocketAddrs::to_socket_addrs`,
/// with the lookup on the blocking pool (a literal is parsed in place). Takes whatever
/// weft's sockets take: `"example.org:443"`, `("localhost", 8080)`, a `SocketAddr`…
///
/// ```
/// let addrs: Vec<_> = weft::run(|| weft::net::lookup_host("localhost:8080"))?.collect();
/// assert!(addrs.iter().all(|a| a.port() == 8080 && a.ip().is_loopback()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn lookup_host<A: ToSocketAddrs>(host: A) -> io::Result<impl Iterator<Item = SocketAddr>> {
    host.weft_resolve()
}
