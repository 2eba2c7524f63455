//! Turning a green thread's stack overflow into a clear message instead of a bare SIGSEGV.
//!
//! A handler for SIGSEGV and SIGBUS is installed once, when the runtime starts, with
//! `SA_ONSTACK` (the faulting stack is full, so the handler runs on the worker's alternate
//! signal stack, which every worker makes sure it has) and `SA_SIGINFO` (for the fault
//! address). The handler asks the worker's thread-local which green thread is running and
//! where its guard page is; the worker keeps that current before every resume. A fault inside
//! that guard page is an overflow: the handler writes
//!
//! ```text
//! weft: green thread 7 'parser' overflowed its 256 KiB stack; aborting
//! ```
//!
//! with `write(2)` (async-signal-safe, no allocation) and aborts with SIGABRT. Any other fault
//! goes to the handler that was installed before weft's, unchanged: a `SA_SIGINFO` handler is
//! called with the same arguments; a default or ignored disposition is restored and the
//! faulting instruction re-executed, so the process dies of the original signal.

use std::ptr;
use std::sync::{Once, OnceLock};

use crate::runtime::scheduler::context;
use crate::sys;

static INSTALL: Once = Once::new();
static PREVIOUS: [OnceLock<libc::sigaction>; 2] = [OnceLock::new(), OnceLock::new()];
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs the handler for SIGSEGV and SIGBUS (once per process).
pub(crate) fn install_handler() {
    INSTALL.call_once(|| {
        for (slot, &signal) in PREVIOUS.iter().zip(SIGNALS.iter()) {
            // SAFETY: zeroed sigaction structs are valid in/out parameters; `handler` has the
            // SA_SIGINFO signature; the previous action is recorded before ours is live, so
            // the handler can always chain.
            unsafe {
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, ptr::null(), &mut previous) != 0 {
                    continue;
                }
                let _ = slot.set(previous);
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, ptr::null_mut());
            }
        }
    });
}

extern "C" fn handler(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    ucontext: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers of fault signals.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some((task, (low, high))) = context::running_guard() {
        if (low..high).contains(&addr) {
            report_overflow(task.id.as_u64(), task.name.as_deref(), task.stack_size);
            // SAFETY: abort is async-signal-safe.
            unsafe { libc::abort() };
        }
    }
    chain(signal, info, ucontext);
}

fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    let index = if signal == libc::SIGSEGV { 0 } else { 1 };
    let previous = PREVIOUS[index].get();
    let disposition = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if disposition == libc::SIG_DFL || disposition == libc::SIG_IGN {
        // Restore the default and return: the faulting instruction runs again and the
        // process dies of the original signal, as it would have without weft.
        // SAFETY: resetting a disposition to SIG_DFL is async-signal-safe.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
        return;
    }
    let siginfo = previous.is_some_and(|p| p.sa_flags & libc::SA_SIGINFO != 0);
    // SAFETY: `disposition` is the function pointer the previous owner installed with these
    // flags, so calling it with the matching signature is what the kernel would have done.
    unsafe {
        if siginfo {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(disposition);
            f(signal, info, ucontext);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(disposition);
            f(signal);
        }
    }
}

/// Formats the overflow message into a stack buffer and writes it; no allocation.
fn report_overflow(id: u64, name: Option<&str>, stack_size: usize) {
    let mut buf = [0u8; 512];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"weft: green thread ");
    put(format_u64(id, &mut [0; 20]));
    if let Some(name) = name {
        put(b" '");
        put(&name.as_bytes()[..name.len().min(200)]);
        put(b"'");
    }
    put(b" overflowed its ");
    put(format_u64((stack_size / 1024) as u64, &mut [0; 20]));
    put(b" KiB stack; aborting\n");
    sys::write_stderr_raw(&buf[..len]);
}

fn format_u64(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buf[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_numbers_without_allocating() {
        assert_eq!(super::format_u64(0, &mut [0; 20]), b"0");
        assert_eq!(super::format_u64(262144, &mut [0; 20]), b"262144");
        assert_eq!(
            super::format_u64(u64::MAX, &mut [0; 20]),
            b"18446744073709551615"
        );
    }
}
