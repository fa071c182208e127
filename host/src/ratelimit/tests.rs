//! The throttle's policy (`decide`) as a table: counters in, wait out.

use super::*;

const LIMITS: LoginLimits = LoginLimits {
    free_failures: 5,
    wait_increment_seconds: 60,
    max_wait_seconds: 900,
    address_failures: 20,
    username_failures: 50,
    failure_reset_seconds: 3600,
};

const NOW: i64 = 1_000_000;

fn failures(failures: i64, seconds_ago: i64) -> Failures {
    Failures {
        failures,
        last_failure_at: NOW - seconds_ago,
    }
}

fn check(attempt: AttemptFailures, expect: Option<i64>, why: &str) {
    let got = decide(&LIMITS, &attempt, NOW).err().map(|t| t.retry_after);
    assert_eq!(got, expect, "{why}: {attempt:?}");
}

#[test]
fn waits_grow_per_username_and_address_and_never_lock() {
    let none = Failures::default();
    let cases = [
        (none, none, none, None, "no failures"),
        (
            failures(4, 0),
            failures(4, 0),
            failures(4, 0),
            None,
            "under the allowance",
        ),
        (
            failures(5, 0),
            failures(5, 0),
            failures(5, 0),
            Some(60),
            "the fifth failure waits one increment",
        ),
        (
            failures(6, 10),
            failures(6, 10),
            failures(6, 10),
            Some(110),
            "each failure adds one",
        ),
        (
            failures(5, 60),
            failures(5, 60),
            failures(5, 60),
            None,
            "the wait is over",
        ),
        (
            failures(100, 0),
            failures(100, 0),
            failures(19, 0),
            Some(900),
            "capped at the maximum wait",
        ),
        (
            none,
            failures(49, 0),
            failures(1, 0),
            None,
            "another address with no failure is not slowed by an attack elsewhere",
        ),
        (
            failures(1, 0),
            failures(50, 0),
            failures(1, 0),
            Some(60),
            "past the username brake one failure waits",
        ),
        (
            none,
            failures(500, 0),
            none,
            None,
            "past the username brake an address with no failure still signs in",
        ),
        (
            none,
            failures(1, 0),
            failures(20, 0),
            Some(60),
            "the address brake: spraying usernames",
        ),
        (
            none,
            failures(1, 0),
            failures(25, 30),
            Some(330),
            "the address brake grows too",
        ),
    ];
    for (pair, username, address, expect, why) in cases {
        check(
            AttemptFailures {
                pair,
                username,
                address,
            },
            expect,
            why,
        );
    }
}

#[test]
fn a_request_keeps_its_longest_refusal() {
    let origin = SignInOrigin::new("192.0.2.1".into());
    assert_eq!(origin.throttled(), None);
    origin.note(Throttled { retry_after: 30 });
    origin.note(Throttled { retry_after: 10 });
    assert_eq!(origin.throttled(), Some(Throttled { retry_after: 30 }));
    assert_eq!(origin.address(), "192.0.2.1");
}
