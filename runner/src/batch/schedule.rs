//! The scheduling rule both the server and `nubo build --local` apply, a
//! pure function of the batch and its builds' states: what starts, what is
//! skipped, what fast-fail stops, how the batch ends.

use super::Batch;

/// Where a build of a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet (waiting for its dependencies or a slot).
    Pending,
    Running,
    Succeeded,
    /// FAILED or TIMED_OUT.
    Failed,
    Stopped,
}

impl State {
    pub fn from_status(status: &str) -> State {
        match status {
            "PENDING" | "QUEUED" => State::Pending,
            "IN_PROGRESS" => State::Running,
            "SUCCEEDED" => State::Succeeded,
            "STOPPED" => State::Stopped,
            _ => State::Failed,
        }
    }

    fn ended(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Stopped)
    }
}

/// What to do next in a batch.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// Pending builds that may start now.
    pub start: Vec<usize>,
    /// Pending builds that will never run, with why.
    pub skip: Vec<(usize, String)>,
    /// Running builds to stop (fast-fail).
    pub stop: Vec<usize>,
    /// The batch's status once every build has ended.
    pub done: Option<&'static str>,
}

/// The next step of `batch` with its builds in `states`.
pub fn step(batch: &Batch, states: &[State]) -> Step {
    let mut s = Step::default();
    let failed_hard = batch
        .builds
        .iter()
        .zip(states)
        .find(|(b, st)| !b.ignore_failure && matches!(st, State::Failed | State::Stopped));
    if let (true, Some((b, _))) = (batch.fast_fail, failed_hard) {
        for (i, st) in states.iter().enumerate() {
            match st {
                State::Running => s.stop.push(i),
                State::Pending => s.skip.push((
                    i,
                    format!(
                        "not started: {} failed and the batch fails fast",
                        b.identifier
                    ),
                )),
                _ => {}
            }
        }
    } else {
        for (i, b) in batch.builds.iter().enumerate() {
            if states[i] != State::Pending {
                continue;
            }
            let mut ready = true;
            for d in &b.depend_on {
                let Some(j) = batch.builds.iter().position(|o| &o.identifier == d) else {
                    continue;
                };
                let dep = &batch.builds[j];
                match states[j] {
                    State::Succeeded => {}
                    State::Failed if dep.ignore_failure => {}
                    State::Failed | State::Stopped => {
                        ready = false;
                        s.skip
                            .push((i, format!("not started: {d} did not succeed")));
                        break;
                    }
                    State::Pending | State::Running => ready = false,
                }
            }
            if ready {
                s.start.push(i);
            }
        }
    }
    // Done once every build has ended (or will never start). A batch the
    // user stopped is STOPPED: the caller knows that, this does not.
    let skipped: Vec<usize> = s.skip.iter().map(|(i, _)| *i).collect();
    let all_ended = states
        .iter()
        .enumerate()
        .all(|(i, st)| st.ended() || skipped.contains(&i));
    if all_ended && s.stop.is_empty() {
        let ok = batch
            .builds
            .iter()
            .zip(states)
            .all(|(b, st)| b.ignore_failure || *st == State::Succeeded);
        s.done = Some(if ok { "SUCCEEDED" } else { "FAILED" });
    }
    s
}
