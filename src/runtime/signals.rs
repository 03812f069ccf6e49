//! Linux signal names as Kubernetes spells them (`SIGTERM`, `SIGRTMIN+3`, `SIGRTMAX-1`).

const NAMED: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGIOT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPOLL", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// glibc's `SIGRTMIN` (the kernel's 32 plus the two glibc reserves), as Go and containerd use.
pub const SIGRTMIN: i32 = 34;
pub const SIGRTMAX: i32 = 64;

/// The number of a signal named as in `lifecycle.stopSignal`; None if unknown.
pub fn parse_signal(name: &str) -> Option<i32> {
    if let Some((_, n)) = NAMED.iter().find(|(n, _)| *n == name) {
        return Some(*n);
    }
    if name == "SIGRTMIN" {
        return Some(SIGRTMIN);
    }
    if name == "SIGRTMAX" {
        return Some(SIGRTMAX);
    }
    if let Some(off) = name.strip_prefix("SIGRTMIN+") {
        let off: i32 = off.parse().ok()?;
        return (1..=15).contains(&off).then_some(SIGRTMIN + off);
    }
    if let Some(off) = name.strip_prefix("SIGRTMAX-") {
        let off: i32 = off.parse().ok()?;
        return (1..=14).contains(&off).then_some(SIGRTMAX - off);
    }
    None
}

/// The conventional name of signal `n` (`SIGTERM`), or `SIG<n>`.
pub fn signal_name(n: i32) -> String {
    if let Some((name, _)) = NAMED.iter().find(|(_, v)| *v == n) {
        return (*name).to_owned();
    }
    match n {
        SIGRTMIN => "SIGRTMIN".to_owned(),
        SIGRTMAX => "SIGRTMAX".to_owned(),
        n if n > SIGRTMIN && n <= SIGRTMIN + 15 => format!("SIGRTMIN+{}", n - SIGRTMIN),
        n if n > SIGRTMIN + 15 && n < SIGRTMAX => format!("SIGRTMAX-{}", SIGRTMAX - n),
        n => format!("SIG{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("SIGQUIT"), Some(3));
        assert_eq!(parse_signal("SIGRTMIN+1"), Some(35));
        assert_eq!(parse_signal("SIGRTMAX-1"), Some(63));
        assert_eq!(parse_signal("SIGRTMAX"), Some(64));
        assert_eq!(parse_signal("SIGFOO"), None);
        assert_eq!(parse_signal("TERM"), None);
        for n in 1..=64 {
            if n == 32 || n == 33 {
                continue;
            }
            assert_eq!(parse_signal(&signal_name(n)), Some(n), "{n}");
        }
    }
}
