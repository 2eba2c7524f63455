//! Wait records: why a green thread waits, packed into one word of its task record by the
//! blocking point ([`super::blocking_point`]) and read back by dumps, which format it
//! (`crate::dump`).

/// Why a parked green thread waits. Addresses identify the channel or lock (the same value
/// for every waiter on one object); fds are the process's file descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitReason {
    /// `weft::park`, `park_timeout`, or a wait with no more specific reason.
    Park,
    /// `weft::sleep`/`sleep_until`, or a timer channel.
    Sleep,
    /// Joining green thread `id`.
    Join {
        /// The joined green thread's id.
        id: u64,
    },
    /// A scope waiting for its green threads.
    Scope,
    /// A channel receive.
    Recv {
        /// The channel's address.
        channel: usize,
    },
    /// A channel send.
    Send {
        /// The channel's address.
        channel: usize,
    },
    /// `select!`.
    Select,
    /// `Mutex::lock` (also `Condvar` re-locking, `OnceLock`).
    Mutex {
        /// The lock's address.
        lock: usize,
    },
    /// `RwLock::read`/`write`.
    RwLock {
        /// The lock's address.
        lock: usize,
    },
    /// `Condvar::wait*` (also `Barrier`, `WaitGroup`).
    Condvar {
        /// The condvar's address.
        condvar: usize,
    },
    /// `Semaphore::acquire`.
    Semaphore {
        /// The semaphore's address.
        semaphore: usize,
    },
    /// Reading (or receiving on) a socket or pipe.
    Read {
        /// The file descriptor.
        fd: i32,
    },
    /// Writing (or sending on) a socket or pipe.
    Write {
        /// The file descriptor.
        fd: i32,
    },
    /// `accept` on a listener.
    Accept {
        /// The listener's file descriptor.
        fd: i32,
    },
    /// A TCP `connect` in progress.
    Connect {
        /// The socket's file descriptor.
        fd: i32,
    },
    /// `Child::wait` (the pidfd's file descriptor).
    ChildExit {
        /// The pidfd.
        fd: i32,
    },
    /// `offload`: a blocking thread runs the call.
    Offload,
    /// `block_on`: a future is pending.
    BlockOn,
    /// With the `hooks` feature: a futex wait that foreign code made (a std `Mutex`,
    /// `RwLock`, `Condvar`, `Once`/`OnceLock` or `Barrier`, say).
    Futex {
        /// The futex word's address.
        addr: usize,
    },
}

const DATA_BITS: u32 = 56;
const DATA_MASK: u64 = (1 << DATA_BITS) - 1;

impl WaitReason {
    /// Packs the reason into one word: the kind in the top byte, its value below.
    pub(crate) fn encode(self) -> u64 {
        let (kind, data): (u64, u64) = match self {
            WaitReason::Park => (0, 0),
            WaitReason::Sleep => (1, 0),
            WaitReason::Join { id } => (2, id),
            WaitReason::Scope => (3, 0),
            WaitReason::Recv { channel } => (4, channel as u64),
            WaitReason::Send { channel } => (5, channel as u64),
            WaitReason::Select => (6, 0),
            WaitReason::Mutex { lock } => (7, lock as u64),
            WaitReason::RwLock { lock } => (8, lock as u64),
            WaitReason::Condvar { condvar } => (9, condvar as u64),
            WaitReason::Semaphore { semaphore } => (10, semaphore as u64),
            WaitReason::Read { fd } => (11, fd as u32 as u64),
            WaitReason::Write { fd } => (12, fd as u32 as u64),
            WaitReason::Accept { fd } => (13, fd as u32 as u64),
            WaitReason::Connect { fd } => (14, fd as u32 as u64),
            WaitReason::ChildExit { fd } => (15, fd as u32 as u64),
            WaitReason::Offload => (16, 0),
            WaitReason::BlockOn => (17, 0),
            WaitReason::Futex { addr } => (18, addr as u64),
        };
        (kind << DATA_BITS) | (data & DATA_MASK)
    }

    /// What a wait of the encoded kind waits for, in words, for the unwinding diagnosis
    /// ("blocked while unwinding, waiting for …").
    pub(crate) fn describe_encoded(word: u64) -> &'static str {
        match WaitReason::decode(word) {
            WaitReason::Park | WaitReason::BlockOn => "a wake-up (weft::park or a future's waker)",
            WaitReason::Sleep => "a timer (weft::sleep)",
            WaitReason::Join { .. } => "a green thread to finish (join)",
            WaitReason::Scope => "a scope's green threads to finish",
            WaitReason::Recv { .. } => "a channel message (recv)",
            WaitReason::Send { .. } => "room in a channel (send)",
            WaitReason::Select => "a channel operation (select)",
            WaitReason::Mutex { .. } => "a weft Mutex",
            WaitReason::RwLock { .. } => "a weft RwLock",
            WaitReason::Condvar { .. } => "a weft Condvar notification",
            WaitReason::Semaphore { .. } => "a weft Semaphore permit",
            WaitReason::Read { .. } => "an fd to become readable",
            WaitReason::Write { .. } => "an fd to become writable",
            WaitReason::Accept { .. } => "a connection (accept)",
            WaitReason::Connect { .. } => "a connect to finish",
            WaitReason::ChildExit { .. } => "a child process to exit",
            WaitReason::Offload => "an offloaded call",
            WaitReason::Futex { .. } => "a std lock, condvar or once (a futex)",
        }
    }

    pub(crate) fn decode(word: u64) -> WaitReason {
        let data = word & DATA_MASK;
        let fd = data as u32 as i32;
        match word >> DATA_BITS {
            1 => WaitReason::Sleep,
            2 => WaitReason::Join { id: data },
            3 => WaitReason::Scope,
            4 => WaitReason::Recv {
                channel: data as usize,
            },
            5 => WaitReason::Send {
                channel: data as usize,
            },
            6 => WaitReason::Select,
            7 => WaitReason::Mutex {
                lock: data as usize,
            },
            8 => WaitReason::RwLock {
                lock: data as usize,
            },
            9 => WaitReason::Condvar {
                condvar: data as usize,
            },
            10 => WaitReason::Semaphore {
                semaphore: data as usize,
            },
            11 => WaitReason::Read { fd },
            12 => WaitReason::Write { fd },
            13 => WaitReason::Accept { fd },
            14 => WaitReason::Connect { fd },
            15 => WaitReason::ChildExit { fd },
            16 => WaitReason::Offload,
            17 => WaitReason::BlockOn,
            18 => WaitReason::Futex {
                addr: data as usize,
            },
            _ => WaitReason::Park,
        }
    }
}
