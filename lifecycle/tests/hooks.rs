//! Hooks run for real: output in the log stream with timestamps, a failing script and a
//! time-out each giving the reason, the process tree killed, background work left running
//! after a successful hook.

use std::time::{Duration, Instant};

use rustmaker_lifecycle::config::Hook;
use rustmaker_lifecycle::hooks::{self, HookOutcome, HookRun};
use rustmaker_lifecycle::logs::LogStream;

fn run(
    dir: &std::path::Path,
    hook: Hook,
    script: &str,
    limit: Duration,
) -> (HookOutcome, LogStream) {
    let log = LogStream::for_hook(&dir.join("logs"), "nb1", hook);
    let env = vec![("GREETING".to_owned(), "hello".to_owned())];
    let outcome = hooks::run(HookRun {
        hook,
        script,
        workdir: &dir.join("work"),
        env: &env,
        limit,
        log: &log,
    })
    .unwrap();
    (outcome, log)
}

fn alive(pid: i32) -> bool {
    rustmaker_lifecycle::backend::running(pid as u32)
}

#[test]
fn output_goes_to_the_stream_with_timestamps_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (o, log) = run(
        dir.path(),
        Hook::OnStart,
        "#!/bin/bash\necho \"$GREETING from $(pwd)\"\necho oops >&2\n",
        Duration::from_secs(10),
    );
    assert_eq!(o, HookOutcome::Succeeded);
    assert_eq!(log.name, "nb1/LifecycleConfigOnStart");
    let (o2, _) = run(
        dir.path(),
        Hook::OnStart,
        "echo second run\n",
        Duration::from_secs(10),
    );
    assert_eq!(o2, HookOutcome::Succeeded);
    let (text, _) = log.read_from(0);
    assert!(
        text.contains(" hello from /\n")
            && text.contains(" oops\n")
            && text.contains(" second run\n"),
        "{text}"
    );
    let first = text.lines().next().unwrap();
    assert!(
        first.len() > 24 && first.as_bytes()[10] == b'T' && first[..24].ends_with('Z'),
        "{first}"
    );
    assert!(text.contains("OnStart exited with status 0"));
}

#[test]
fn a_failing_script_and_a_time_out_give_the_reason_and_kill_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (o, log) = run(
        dir.path(),
        Hook::OnCreate,
        "echo about to fail\nexit 3\n",
        Duration::from_secs(10),
    );
    assert_eq!(
        o,
        HookOutcome::Failed {
            status: "exit status 3".into()
        }
    );
    let reason = o.failure_reason(Hook::OnCreate, &log).unwrap();
    assert!(
        reason.contains("OnCreate script failed (exit status 3)")
            && reason.contains("nb1/LifecycleConfigOnCreate"),
        "{reason}"
    );

    let pidfile = dir.path().join("child.pid");
    let script = format!("sleep 60 &\necho $! > {}\nsleep 60\n", pidfile.display());
    let started = Instant::now();
    let (o, log) = run(
        dir.path(),
        Hook::OnStart,
        &script,
        Duration::from_millis(800),
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        o,
        HookOutcome::TimedOut {
            limit: Duration::from_millis(800)
        }
    );
    assert!(o
        .failure_reason(Hook::OnStart, &log)
        .unwrap()
        .contains("ran longer than its limit"));
    let child: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(child), "the script's child was killed with it");
}

#[test]
fn background_work_of_a_successful_hook_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    let script = format!(
        "nohup sleep 30 >/dev/null 2>&1 &\necho $! > {}\necho done\n",
        pidfile.display()
    );
    let started = Instant::now();
    let (o, _) = run(dir.path(), Hook::OnStart, &script, Duration::from_secs(10));
    assert_eq!(o, HookOutcome::Succeeded);
    assert!(started.elapsed() < Duration::from_secs(3));
    let bg: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(bg));
    unsafe { libc::kill(bg, libc::SIGKILL) };
}
