//! Configuration errors: invalid values, configuring too late, invalid environment.

mod common;

#[test]
fn config_validation_and_already_started() {
    use weft::{Config, ConfigError};
    assert_eq!(
        Config::new().workers(0).apply(),
        Err(ConfigError::InvalidWorkers(0))
    );
    assert_eq!(
        Config::new().workers(weft::MAX_WORKERS + 1).apply(),
        Err(ConfigError::InvalidWorkers(weft::MAX_WORKERS + 1))
    );
    let huge = weft::MAX_STACK_SIZE + 1;
    assert_eq!(
        Config::new().stack_size(huge).apply(),
        Err(ConfigError::InvalidStackSize(huge))
    );
    assert!(ConfigError::InvalidStackSize(huge)
        .to_string()
        .contains("1 GiB"));

    Config::new()
        .workers(3)
        .stack_size(100_000)
        .apply()
        .unwrap();
    assert_eq!(weft::stats().workers, 0, "stats does not start the runtime");
    weft::spawn(|| ()).join().unwrap();
    assert_eq!(weft::stats().workers, 3);
    let err = Config::new().workers(2).apply().unwrap_err();
    assert_eq!(err, ConfigError::AlreadyStarted);
    assert!(err.to_string().contains("already started"));
}

#[test]
#[ignore = "child process of the environment tests"]
fn child_report_workers() {
    if !common::is_child() {
        return;
    }
    weft::spawn(|| ()).join().unwrap();
    println!("workers={}", weft::stats().workers);
}

#[test]
fn env_sets_the_worker_count() {
    let output = common::run_child("child_report_workers", &[("WEFT_WORKERS", "3")]);
    assert!(output.status.success(), "{}", common::stderr_of(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("workers=3"));
}

#[test]
fn invalid_env_stops_the_program_naming_the_variable() {
    for (name, value) in [
        ("WEFT_WORKERS", "lots"),
        ("WEFT_WORKERS", "0"),
        ("WEFT_STACK_SIZE", "2G"),
    ] {
        let output = common::run_child("child_report_workers", &[(name, value)]);
        let stderr = common::stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid {name}=")),
            "{name}={value}: {stderr}"
        );
    }
}
