//! The dispatch choice as plain functions: which tasks a session may claim, in which order,
//! and why not. Used both by the grant pass and by `Admin.DispatchPreview`, so the preview can
//! never disagree with the dispatcher.

use std::{cmp::Reverse, collections::HashMap, fmt};

use super::status::Status;

/// What the dispatcher knows of a session.
#[derive(Debug, Clone, Default)]
pub struct SessionView {
    /// Profiles it runs.
    pub profiles: Vec<String>,
    /// Capabilities it offers, sorted.
    pub capabilities: Vec<String>,
    /// Its machine.
    pub machine_id: String,
    /// Whether it takes review tasks.
    pub review_lane: bool,
    /// Slots not holding a claim.
    pub free_slots: u32,
}

/// What the dispatcher knows of a candidate task and its surroundings.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Board slug.
    pub board: String,
    /// Status (ready or review to be claimable).
    pub status: Status,
    /// Priority; higher first.
    pub priority: i32,
    /// Creation time (Unix ms); older first.
    pub created_at: i64,
    /// Its assignee; empty means the board's default.
    pub assignee: String,
    /// The board's default assignee.
    pub board_default_assignee: String,
    /// The board's running cap; 0 for none.
    pub board_max_running: u32,
    /// Every parent is done or archived.
    pub parents_finished: bool,
    /// Not claimable before (Unix ms).
    pub cooldown_until: Option<i64>,
    /// Capabilities it needs, sorted.
    pub required_capabilities: Vec<String>,
    /// Machine it must run on; empty for any.
    pub target_machine: String,
}

impl TaskView {
    /// The profile that runs it: its assignee, else the board's default; `None` if neither.
    pub fn profile(&self) -> Option<&str> {
        [&self.assignee, &self.board_default_assignee]
            .into_iter()
            .find(|p| !p.is_empty())
            .map(String::as_str)
    }

    /// Dispatch order: priority descending, then age (oldest first), then id for stability.
    pub fn order_key(&self) -> (Reverse<i32>, i64, &str) {
        (Reverse(self.priority), self.created_at, &self.id)
    }
}

/// Claims already running, counted by board and by profile, for the caps.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Running claims per board.
    pub by_board: HashMap<String, u32>,
    /// Running claims per profile.
    pub by_profile: HashMap<String, u32>,
    /// Cap per profile (from the service configuration); absent means none.
    pub profile_caps: HashMap<String, u32>,
}

/// Why a task would not be granted to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhyNot {
    /// Its status is not claimable in the session's lanes.
    Status(Status),
    /// A parent is unfinished.
    ParentsUnfinished,
    /// It cools down until this time (Unix ms).
    CoolingDown(i64),
    /// Neither it nor its board names a profile.
    NoAssignee,
    /// The session does not run its profile.
    Profile(String),
    /// The session lacks these capabilities.
    Capabilities(Vec<String>),
    /// It must run on another machine.
    Machine(String),
    /// Its board already runs its cap.
    BoardCap(u32),
    /// Its profile already runs its cap.
    ProfileCap(u32),
    /// The session has no free slot.
    NoSlot,
}

impl fmt::Display for WhyNot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WhyNot::Status(s) => write!(f, "status is {s}"),
            WhyNot::ParentsUnfinished => f.write_str("a parent is not finished"),
            WhyNot::CoolingDown(until) => write!(f, "cooling down until {until} (Unix ms)"),
            WhyNot::NoAssignee => f.write_str("no assignee and the board has no default assignee"),
            WhyNot::Profile(p) => write!(f, "profile {p:?} is not one of the session's profiles"),
            WhyNot::Capabilities(missing) => {
                write!(f, "the session lacks capabilities {}", missing.join(", "))
            }
            WhyNot::Machine(m) => write!(f, "targets machine {m:?}"),
            WhyNot::BoardCap(n) => write!(f, "its board already runs {n} tasks (its cap)"),
            WhyNot::ProfileCap(n) => write!(f, "its profile already runs {n} tasks (its cap)"),
            WhyNot::NoSlot => f.write_str("the session has no free slot"),
        }
    }
}

/// Why `task` cannot be granted to `session` now, or `None` if it can.
pub fn why_not(task: &TaskView, session: &SessionView, load: &Load, now_ms: i64) -> Option<WhyNot> {
    let lane_ok = match task.status {
        Status::Ready => true,
        Status::Review => session.review_lane,
        _ => false,
    };
    if !lane_ok {
        return Some(WhyNot::Status(task.status));
    }
    if !task.parents_finished {
        return Some(WhyNot::ParentsUnfinished);
    }
    if let Some(until) = task.cooldown_until.filter(|until| *until > now_ms) {
        return Some(WhyNot::CoolingDown(until));
    }
    let Some(profile) = task.profile() else {
        return Some(WhyNot::NoAssignee);
    };
    if !session.profiles.iter().any(|p| p == profile) {
        return Some(WhyNot::Profile(profile.to_owned()));
    }
    let missing: Vec<String> = task
        .required_capabilities
        .iter()
        .filter(|c| session.capabilities.binary_search(c).is_err())
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Some(WhyNot::Capabilities(missing));
    }
    if !task.target_machine.is_empty() && task.target_machine != session.machine_id {
        return Some(WhyNot::Machine(task.target_machine.clone()));
    }
    let running = |map: &HashMap<String, u32>, key: &str| map.get(key).copied().unwrap_or(0);
    if task.board_max_running > 0 && running(&load.by_board, &task.board) >= task.board_max_running
    {
        return Some(WhyNot::BoardCap(task.board_max_running));
    }
    if let Some(cap) = load.profile_caps.get(profile)
        && running(&load.by_profile, profile) >= *cap
    {
        return Some(WhyNot::ProfileCap(*cap));
    }
    if session.free_slots == 0 {
        return Some(WhyNot::NoSlot);
    }
    None
}

/// Sorts candidates into dispatch order.
pub fn sort(tasks: &mut [TaskView]) {
    tasks.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
}

/// The first task in dispatch order that `session` may claim.
pub fn choose<'a>(
    tasks: &'a [TaskView],
    session: &SessionView,
    load: &Load,
    now_ms: i64,
) -> Option<&'a TaskView> {
    let mut ordered: Vec<&TaskView> = tasks.iter().collect();
    ordered.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    ordered
        .into_iter()
        .find(|t| why_not(t, session, load, now_ms).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, priority: i32, created_at: i64) -> TaskView {
        TaskView {
            id: id.into(),
            board: "default".into(),
            status: Status::Ready,
            priority,
            created_at,
            assignee: "coder".into(),
            board_default_assignee: String::new(),
            board_max_running: 0,
            parents_finished: true,
            cooldown_until: None,
            required_capabilities: vec![],
            target_machine: String::new(),
        }
    }

    fn session() -> SessionView {
        SessionView {
            profiles: vec!["coder".into()],
            capabilities: vec!["gpu".into(), "net".into()],
            machine_id: "m1".into(),
            review_lane: false,
            free_slots: 1,
        }
    }

    #[test]
    fn priority_first_then_age() {
        let tasks = [
            task("a", 0, 1),
            task("b", 5, 3),
            task("c", 5, 2),
            task("d", -1, 0),
        ];
        let chosen = choose(&tasks, &session(), &Load::default(), 0).unwrap();
        assert_eq!(chosen.id, "c");
        let mut sorted = tasks.to_vec();
        sort(&mut sorted);
        let order: Vec<&str> = sorted.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(order, ["c", "b", "a", "d"]);
    }

    #[test]
    fn each_predicate_says_why_not() {
        let s = session();
        let load = Load::default();
        let check = |t: TaskView| why_not(&t, &s, &load, 1_000);

        assert_eq!(check(task("a", 0, 0)), None);
        assert_eq!(
            check(TaskView {
                status: Status::Todo,
                ..task("a", 0, 0)
            }),
            Some(WhyNot::Status(Status::Todo))
        );
        assert_eq!(
            check(TaskView {
                status: Status::Review,
                ..task("a", 0, 0)
            }),
            Some(WhyNot::Status(Status::Review)),
            "the review lane is opt-in"
        );
        assert_eq!(
            check(TaskView {
                parents_finished: false,
                ..task("a", 0, 0)
            }),
            Some(WhyNot::ParentsUnfinished)
        );
        assert_eq!(
            check(TaskView {
                cooldown_until: Some(2_000),
                ..task("a", 0, 0)
            }),
            Some(WhyNot::CoolingDown(2_000))
        );
        assert_eq!(
            check(TaskView {
                cooldown_until: Some(1_000),
                ..task("a", 0, 0)
            }),
            None,
            "cooldown over"
        );
        assert_eq!(
            check(TaskView {
                assignee: String::new(),
                ..task("a", 0, 0)
            }),
            Some(WhyNot::NoAssignee)
        );
        assert_eq!(
            check(TaskView {
                assignee: "writer".into(),
                ..task("a", 0, 0)
            }),
            Some(WhyNot::Profile("writer".into()))
        );
        assert_eq!(
            check(TaskView {
                required_capabilities: vec!["gpu".into(), "tpu".into()],
                ..task("a", 0, 0)
            }),
            Some(WhyNot::Capabilities(vec!["tpu".into()]))
        );
        assert_eq!(
            check(TaskView {
                required_capabilities: vec!["gpu".into()],
                ..task("a", 0, 0)
            }),
            None
        );
        assert_eq!(
            check(TaskView {
                target_machine: "m2".into(),
                ..task("a", 0, 0)
            }),
            Some(WhyNot::Machine("m2".into()))
        );
        assert_eq!(
            check(TaskView {
                target_machine: "m1".into(),
                ..task("a", 0, 0)
            }),
            None
        );
    }

    #[test]
    fn unassigned_tasks_take_the_board_default() {
        let t = TaskView {
            assignee: String::new(),
            board_default_assignee: "coder".into(),
            ..task("a", 0, 0)
        };
        assert_eq!(t.profile(), Some("coder"));
        assert_eq!(why_not(&t, &session(), &Load::default(), 0), None);
    }

    #[test]
    fn the_review_lane_takes_review_tasks() {
        let s = SessionView {
            review_lane: true,
            ..session()
        };
        let t = TaskView {
            status: Status::Review,
            ..task("a", 0, 0)
        };
        assert_eq!(why_not(&t, &s, &Load::default(), 0), None);
    }

    #[test]
    fn caps_per_board_profile_and_session() {
        let s = session();
        let mut load = Load::default();
        load.by_board.insert("default".into(), 2);
        load.by_profile.insert("coder".into(), 3);
        let capped = TaskView {
            board_max_running: 2,
            ..task("a", 0, 0)
        };
        assert_eq!(why_not(&capped, &s, &load, 0), Some(WhyNot::BoardCap(2)));
        load.profile_caps.insert("coder".into(), 3);
        assert_eq!(
            why_not(&task("a", 0, 0), &s, &load, 0),
            Some(WhyNot::ProfileCap(3))
        );
        load.profile_caps.insert("coder".into(), 4);
        assert_eq!(why_not(&task("a", 0, 0), &s, &load, 0), None);
        let full = SessionView {
            free_slots: 0,
            ..session()
        };
        assert_eq!(
            why_not(&task("a", 0, 0), &full, &load, 0),
            Some(WhyNot::NoSlot)
        );
    }
}
