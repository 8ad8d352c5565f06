//! The one table of which roles may call each RPC.
//!
//! A call whose method is not in the table is refused, so a new RPC is closed until it is
//! given a row (a unit test checks every method of the embedded descriptor set has one).
//! Health and reflection need no credential: they tell whether kanband serves and what its
//! API looks like, nothing about the board. Finer checks (a supervisor's own machine and
//! sessions, a worker's own task) are the handlers'.

use super::identity::Role::{self, Admin, Operator, Reader, Supervisor, Worker};

/// Roles allowed to read the board: tasks, comments, events, boards.
const READ: &[Role] = &[Admin, Operator, Worker, Reader];
/// Roles allowed to change boards and tasks as people do.
const OPERATE: &[Role] = &[Admin, Operator];
/// Only the administrator.
const ADMIN: &[Role] = &[Admin];
/// A gateway's session calls.
const SESSION: &[Role] = &[Admin, Supervisor];
/// The holder verbs on a claim: its supervisor or its worker.
const HOLD: &[Role] = &[Admin, Supervisor, Worker];

/// Method path (`/package.Service/Method`) and the roles that may call it.
pub const TABLE: &[(&str, &[Role])] = &[
    ("/kanban.v1.Boards/CreateBoard", OPERATE),
    ("/kanban.v1.Boards/GetBoard", READ),
    ("/kanban.v1.Boards/ListBoards", READ),
    ("/kanban.v1.Boards/UpdateBoard", OPERATE),
    ("/kanban.v1.Boards/ArchiveBoard", OPERATE),
    ("/kanban.v1.Boards/ResetBoard", OPERATE),
    ("/kanban.v1.Tasks/CreateTask", &[Admin, Operator, Worker]),
    ("/kanban.v1.Tasks/GetTask", READ),
    ("/kanban.v1.Tasks/ListTasks", READ),
    ("/kanban.v1.Tasks/UpdateTask", OPERATE),
    ("/kanban.v1.Tasks/AssignTask", OPERATE),
    ("/kanban.v1.Tasks/LinkTasks", OPERATE),
    ("/kanban.v1.Tasks/UnlinkTasks", OPERATE),
    ("/kanban.v1.Tasks/AddComment", &[Admin, Operator, Worker]),
    ("/kanban.v1.Tasks/ListComments", READ),
    ("/kanban.v1.Tasks/BlockTask", OPERATE),
    ("/kanban.v1.Tasks/UnblockTask", OPERATE),
    ("/kanban.v1.Tasks/ScheduleTask", OPERATE),
    ("/kanban.v1.Tasks/PromoteTask", OPERATE),
    ("/kanban.v1.Tasks/ArchiveTask", OPERATE),
    ("/kanban.v1.Tasks/ReclaimTask", OPERATE),
    ("/kanban.v1.Tasks/ReopenReview", OPERATE),
    ("/kanban.v1.Tasks/ListEvents", READ),
    ("/kanban.v1.Leases/OpenSession", SESSION),
    ("/kanban.v1.Leases/KeepAlive", SESSION),
    ("/kanban.v1.Leases/CloseSession", SESSION),
    ("/kanban.v1.Leases/Acquire", SESSION),
    ("/kanban.v1.Leases/Renew", HOLD),
    ("/kanban.v1.Leases/Heartbeat", HOLD),
    ("/kanban.v1.Leases/Complete", HOLD),
    // A complete and an acquire: only a caller allowed both (the holder's worker opens no
    // session).
    ("/kanban.v1.Leases/CompleteAndAcquire", SESSION),
    ("/kanban.v1.Leases/Block", HOLD),
    ("/kanban.v1.Leases/RequestReview", HOLD),
    ("/kanban.v1.Leases/RequestChanges", HOLD),
    ("/kanban.v1.Leases/Release", HOLD),
    ("/kanban.v1.Leases/ReportExit", HOLD),
    ("/kanban.v1.Admin/DispatchPreview", OPERATE),
    ("/kanban.v1.Admin/Stats", &[Admin, Operator, Reader]),
    ("/kanban.v1.Admin/CheckInvariants", OPERATE),
    ("/kanban.v1.Admin/Backup", ADMIN),
    ("/kanban.v1.Admin/SetStorageLimit", ADMIN),
    ("/kanban.v1.Admin/CreateToken", ADMIN),
    ("/kanban.v1.Admin/ListTokens", ADMIN),
    ("/kanban.v1.Admin/RevokeToken", ADMIN),
    ("/kanban.v1.Events/Watch", READ),
    ("/kanban.v1.Notifications/Subscribe", SESSION),
    ("/kanban.v1.Notifications/Unsubscribe", SESSION),
    ("/kanban.v1.Notifications/ListSubscriptions", SESSION),
    ("/kanban.v1.Notifications/Deliver", SESSION),
    ("/kanban.v1.Notifications/Ack", SESSION),
    ("/kanban.v1.Attachments/Upload", &[Admin, Operator, Worker]),
    ("/kanban.v1.Attachments/List", READ),
    ("/kanban.v1.Attachments/Download", READ),
    ("/kanban.v1.Attachments/Delete", OPERATE),
];

/// Services anyone may call, without a credential.
const PUBLIC: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The methods of the public services.
const PUBLIC_METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Every method kanband serves: the table's and the public services'.
pub fn served() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .map(|(path, _)| *path)
        .chain(PUBLIC_METHODS.iter().copied())
}

/// What the policy says about a method path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No credential needed.
    Public,
    /// These roles may call it.
    Roles(&'static [Role]),
    /// Not in the table: refused to everyone.
    Unknown,
}

/// The rule for `path`.
pub fn rule(path: &str) -> Rule {
    if PUBLIC.iter().any(|prefix| path.starts_with(prefix)) {
        return Rule::Public;
    }
    TABLE
        .iter()
        .find(|(method, _)| *method == path)
        .map_or(Rule::Unknown, |(_, roles)| Rule::Roles(roles))
}

/// Whether `method` (short name, as [`short`] gives it) is fenced by the claim token it
/// carries: the holder verbs, a worker's comment and upload. A worker whose claim has ended
/// keeps these, so their fencing tells it why (ABORTED with the lease-lost reason).
pub fn fenced(method: &str) -> bool {
    matches!(method, "Tasks/AddComment" | "Attachments/Upload")
        || TABLE
            .iter()
            .any(|(path, roles)| *roles == HOLD && short(path) == method)
}

/// The method's short name for messages: `Tasks/ArchiveTask`.
pub fn short(path: &str) -> &str {
    path.trim_start_matches('/')
        .strip_prefix("kanban.v1.")
        .unwrap_or(path)
}

/// The roles as a message names them: `admin or operator`.
pub fn names(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    match names.as_slice() {
        [] => "no role".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    /// Every method (`/package.Service/Method`) of an encoded descriptor set.
    fn methods_of(encoded: &[u8]) -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(encoded)
            .expect("the embedded descriptor set decodes");
        let mut methods = Vec::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        methods
    }

    #[test]
    fn served_names_every_method_of_every_service() {
        let mut every = methods_of(kanband_proto::FILE_DESCRIPTOR_SET);
        for public in [
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let methods = methods_of(public);
            assert!(
                methods.iter().all(|m| rule(m) == Rule::Public),
                "{methods:?}"
            );
            every.extend(methods);
        }
        every.sort_unstable();
        let mut served: Vec<&str> = served().collect();
        served.sort_unstable();
        assert_eq!(served, every);
    }

    #[test]
    fn every_method_of_the_api_has_a_row() {
        let methods = methods_of(kanband_proto::FILE_DESCRIPTOR_SET);
        assert!(methods.len() > 40, "{methods:?}");
        for method in &methods {
            assert!(
                matches!(rule(method), Rule::Roles(_)),
                "{method} has no policy row"
            );
        }
        assert_eq!(
            methods.len(),
            TABLE.len(),
            "the table names only real methods"
        );
    }

    #[test]
    fn public_unknown_and_names() {
        assert_eq!(rule("/grpc.health.v1.Health/Check"), Rule::Public);
        assert_eq!(rule("/kanban.v1.Tasks/Nope"), Rule::Unknown);
        assert_eq!(short("/kanban.v1.Tasks/GetTask"), "Tasks/GetTask");
        assert_eq!(names(&[Admin]), "admin");
        assert_eq!(names(OPERATE), "admin or operator");
        assert_eq!(names(READ), "admin, operator, worker or reader");
    }
}
