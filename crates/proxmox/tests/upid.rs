//! UPID parsing: real-looking UPIDs, both forms, and malformed input.

use proptest::prelude::*;
use tasktrack_core::Error;
use tasktrack_proxmox::Upid;

struct Case {
    upid: &'static str,
    node: &'static str,
    pid: u32,
    pstart: u64,
    counter: Option<u64>,
    starttime: i64,
    task_type: &'static str,
    id: &'static str,
    user: &'static str,
    comment: &'static str,
}

const CASES: &[Case] = &[
    // The proxmoxer documentation's examples.
    Case { upid: "UPID:example-node:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:", node: "example-node", pid: 715154, pstart: 10623911, counter: None, starttime: 1636572501, task_type: "vzdump", id: "100", user: "root@pam", comment: "" },
    Case { upid: "UPID:example-node:00213D37:01ECA9AD:618F6B8D:aptupdate::root@pam:", node: "example-node", pid: 2178359, pstart: 32287149, counter: None, starttime: 1636789133, task_type: "aptupdate", id: "", user: "root@pam", comment: "" },
    Case { upid: "UPID:example-node:002E096A:0E10F08E:6382D261:vzcreate:123:root@pam:", node: "example-node", pid: 3017066, pstart: 235991182, counter: None, starttime: 1669517921, task_type: "vzcreate", id: "123", user: "root@pam", comment: "" },
    // A 9-digit pstart (long uptime), lower-case hex, a token user.
    Case { upid: "UPID:pve1:0001a2b3:1a2b3c4d5:65F0A1B2:qmigrate:101:automation@pve!ci-token:", node: "pve1", pid: 0x1a2b3, pstart: 0x1a2b3c4d5, counter: None, starttime: 0x65F0A1B2, task_type: "qmigrate", id: "101", user: "automation@pve!ci-token", comment: "" },
    // Ids with '-' and '.', a dotted node name, an LDAP realm.
    Case { upid: "UPID:node-2.lab:00003A98:00C0FFEE:66000000:imgcopy:local-lvm.vm-100-disk-0:alice@ldap-corp:", node: "node-2.lab", pid: 15000, pstart: 0xC0FFEE, counter: None, starttime: 0x66000000, task_type: "imgcopy", id: "local-lvm.vm-100-disk-0", user: "alice@ldap-corp", comment: "" },
    // proxmoxer's comment field.
    Case { upid: "UPID:pve3:00000F00:00000A00:5F000000:vncproxy:200:root@pam:done", node: "pve3", pid: 0xF00, pstart: 0xA00, counter: None, starttime: 0x5F000000, task_type: "vncproxy", id: "200", user: "root@pam", comment: "done" },
    // Proxmox Backup Server: a task counter between pstart and starttime.
    Case { upid: "UPID:pbs:000004F1:00000A3E:00000001:62A7E5B7:termproxy::root@pam:", node: "pbs", pid: 0x4F1, pstart: 0xA3E, counter: Some(1), starttime: 0x62A7E5B7, task_type: "termproxy", id: "", user: "root@pam", comment: "" },
    Case { upid: "UPID:backup-01:0000AB12:0001CD34:0000002A:64B7E5B7:backup:store1:vm-100:sync@pbs!nightly:", node: "backup-01", pid: 0xAB12, pstart: 0x1CD34, counter: Some(42), starttime: 0x64B7E5B7, task_type: "backup", id: "store1:vm-100", user: "sync@pbs!nightly", comment: "" },
    // A PVE id containing a colon is not mistaken for the PBS form.
    Case { upid: "UPID:pve1:00001000:00002000:65000000:download:local:iso-debian.iso:root@pam:", node: "pve1", pid: 0x1000, pstart: 0x2000, counter: None, starttime: 0x65000000, task_type: "download", id: "local:iso-debian.iso", user: "root@pam", comment: "" },
];

#[test]
fn real_looking_upids_parse_and_round_trip() {
    for c in CASES {
        let u: Upid = c.upid.parse().unwrap_or_else(|e| panic!("{}: {e}", c.upid));
        assert_eq!(u.node(), c.node, "{}", c.upid);
        assert_eq!(u.pid(), c.pid, "{}", c.upid);
        assert_eq!(u.pstart(), c.pstart, "{}", c.upid);
        assert_eq!(u.task_counter(), c.counter, "{}", c.upid);
        assert_eq!(u.starttime(), c.starttime, "{}", c.upid);
        assert_eq!(u.started_at().timestamp(), c.starttime);
        assert_eq!(u.task_type(), c.task_type, "{}", c.upid);
        assert_eq!(u.id(), c.id, "{}", c.upid);
        assert_eq!(u.user(), c.user, "{}", c.upid);
        assert_eq!(u.comment(), c.comment, "{}", c.upid);
        assert_eq!(u.to_string(), c.upid, "Display gives back the input");
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, format!("\"{}\"", c.upid));
        assert_eq!(serde_json::from_str::<Upid>(&json).unwrap(), u);
    }
}

#[test]
fn hex_case_does_not_change_identity() {
    let upper: Upid = "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:"
        .parse()
        .unwrap();
    let lower: Upid = "UPID:pve1:000ae992:00a21ba7:618c1d55:vzdump:100:root@pam:"
        .parse()
        .unwrap();
    assert_eq!(upper, lower);
    assert_ne!(
        upper.to_string(),
        lower.to_string(),
        "but each displays as given"
    );
}

#[test]
fn built_upids_format_like_proxmox() {
    let u = Upid::new("pve1", 0x1A, 0x2B, 0x618C1D55, "vzdump", "100", "root@pam").unwrap();
    assert_eq!(
        u.to_string(),
        "UPID:pve1:0000001A:0000002B:618C1D55:vzdump:100:root@pam:"
    );
    let u = Upid::new(
        "pve1",
        1,
        0x1_2345_6789,
        0x618C1D55,
        "qmstart",
        "",
        "root@pam",
    )
    .unwrap();
    assert_eq!(
        u.to_string(),
        "UPID:pve1:00000001:123456789:618C1D55:qmstart::root@pam:"
    );
    let u = Upid::new_pbs(
        "pbs",
        1,
        2,
        3,
        0x62A7E5B7,
        "garbage_collection",
        "store1",
        "root@pam",
    )
    .unwrap();
    assert_eq!(
        u.to_string(),
        "UPID:pbs:00000001:00000002:00000003:62A7E5B7:garbage_collection:store1:root@pam:"
    );
    assert_eq!(u.task_counter(), Some(3));
    assert!(Upid::new("", 1, 1, 1, "x", "", "root@pam").is_err());
    assert!(Upid::new("pve:1", 1, 1, 1, "x", "", "root@pam").is_err());
    assert!(Upid::new("pve1", 1, 1, -5, "x", "", "root@pam").is_err());
}

#[test]
fn malformed_upids_are_clear_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "does not start with"),
        ("UPID", "does not start with"),
        (
            "upid:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "does not start with",
        ),
        (
            "PID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "does not start with",
        ),
        (
            " UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "whitespace",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:\n",
            "whitespace",
        ),
        (
            "UPID:pve 1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "whitespace",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam",
            "trailing colon",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:root@pam:",
            "fields",
        ),
        ("UPID:pve1:000AE992:00A21BA7:vzdump:100:root@pam:", "fields"),
        (
            "UPID::000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "node is empty",
        ),
        (
            "UPID:pve1:000AE99G:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "PID \"000AE99G\" is not hexadecimal",
        ),
        (
            "UPID:pve1:000AE992:-0A21BA7:618C1D55:vzdump:100:root@pam:",
            "PSTART",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D5Z:vzdump:100:root@pam:",
            "STARTTIME",
        ),
        (
            "UPID:pve1::00A21BA7:618C1D55:vzdump:100:root@pam:",
            "PID is empty",
        ),
        (
            "UPID:pve1:1FFFFFFFF:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "too large",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55::100:root@pam:",
            "type is empty",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root:",
            "not user@realm",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:@pam:",
            "not user@realm",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@:",
            "not user@realm",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:a:b",
            "not user@realm",
        ),
        (
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "",
        ),
    ];
    let mut errors = 0;
    for (input, needle) in cases {
        match input.parse::<Upid>() {
            Ok(u) => assert!(needle.is_empty(), "{input:?} parsed as {u:?}"),
            Err(Error::InvalidInput { provider, message }) => {
                errors += 1;
                assert_eq!(provider, "proxmox");
                assert!(message.contains(needle), "{input:?}: {message}");
                assert!(
                    message.contains("expected UPID:node:PID"),
                    "says the expected form: {message}"
                );
            }
            Err(other) => panic!("{input:?}: wrong error kind {other:?}"),
        }
    }
    assert!(errors >= 15, "{errors} malformed cases");
}

proptest! {
    #[test]
    fn format_then_parse_is_identity(
        node in "[a-z][a-z0-9.-]{0,20}",
        pid in any::<u32>(),
        pstart in 0u64..=0xF_FFFF_FFFF,
        starttime in 0i64..=0xFFFF_FFFF,
        task_type in "[a-z][a-z_]{0,15}",
        id in "[a-z0-9.-]{0,12}",
        user in "[a-z]{1,8}@(pam|pve|ldap)(![a-z0-9-]{1,8})?",
        counter in proptest::option::of(any::<u32>()),
    ) {
        let built = match counter {
            Some(c) => Upid::new_pbs(&node, pid, pstart, u64::from(c), starttime, &task_type, &id, &user),
            None => Upid::new(&node, pid, pstart, starttime, &task_type, &id, &user),
        }.unwrap();
        let parsed: Upid = built.to_string().parse().unwrap();
        prop_assert_eq!(&parsed, &built);
        prop_assert_eq!(parsed.to_string(), built.to_string());
        prop_assert_eq!(parsed.task_counter(), counter.map(u64::from));
        prop_assert_eq!(parsed.starttime(), starttime);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,120}") {
        let _ = s.parse::<Upid>();
    }

    #[test]
    fn arbitrary_upid_shaped_strings_never_panic(fields in proptest::collection::vec("[0-9A-Za-z@!:._-]{0,10}", 0..12)) {
        let s = format!("UPID:{}", fields.join(":"));
        let _ = s.parse::<Upid>();
    }
}
