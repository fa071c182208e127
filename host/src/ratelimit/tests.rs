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

#[test]
fn wrong_user_codes_wait_per_session_and_per_address() {
    let none = Failures::default();
    let cases = [
        (failures(4, 0), failures(4, 0), None, "a few typos are free"),
        (
            failures(5, 0),
            failures(5, 0),
            Some(60),
            "the fifth wrong code in a session waits",
        ),
        (
            failures(7, 30),
            failures(7, 30),
            Some(150),
            "each wrong code adds a minute",
        ),
        (
            failures(1000, 0),
            failures(1000, 0),
            Some(900),
            "capped at fifteen minutes",
        ),
        (
            none,
            failures(20, 0),
            Some(60),
            "a fresh session from a guessing address waits",
        ),
        (
            failures(1, 0),
            failures(19, 0),
            None,
            "sessions under the address brake",
        ),
    ];
    for (session, address, expect, why) in cases {
        let attempt = AttemptFailures {
            pair: session,
            username: none,
            address,
        };
        let got = decide(&USER_CODE_LIMITS, &attempt, NOW)
            .err()
            .map(|t| t.retry_after);
        assert_eq!(got, expect, "{why}: {attempt:?}");
    }
}

#[test]
fn user_code_counters_are_named_apart_from_sign_in_counters() {
    let user_code = UserCodeCounters::new("s1", "192.0.2.1");
    let sign_in = Counters::new("s1", Some("192.0.2.1"));
    for name in user_code.all() {
        assert!(name.starts_with("user_code:"), "{name}");
        assert!(
            !sign_in.all().contains(&name),
            "{name} is also a sign-in counter"
        );
    }
    let stored = [LoginFailures {
        counter: "user_code:session:s1".into(),
        failures: 3,
        last_failure_at: NOW,
    }];
    let attempt = user_code.attempt(&stored);
    assert_eq!(attempt.pair.failures, 3);
    assert_eq!(attempt.address, Failures::default());
}
