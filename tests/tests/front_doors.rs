//! The Rust door gives the receipt the Python and C doors are checked against
//! (`tests/fixtures/identify.receipt.json`, shared by the three test suites).

use userops::{Command, Engine, Event, Output};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("fixture exists")
}

#[test]
fn typed_json_and_command_doors_agree() {
    let event_json = fixture("identify.json");
    let expected = fixture("identify.receipt.json");

    let mut typed = Engine::default();
    let receipt = typed
        .ingest(Event::from_json(&event_json).unwrap())
        .unwrap();
    assert_eq!(serde_json::to_string(&receipt).unwrap(), expected);

    let mut by_call = Engine::default();
    let out = by_call
        .call_json("ingest", &format!(r#"{{"event": {event_json}}}"#))
        .unwrap();
    assert_eq!(out, expected);

    let mut by_command = Engine::default();
    let command: Command = serde_json::from_str(&format!(
        r#"{{"method": "ingest", "args": {{"event": {event_json}}}}}"#
    ))
    .unwrap();
    match by_command.execute(command).unwrap() {
        Output::Receipt(r) => assert_eq!(r, receipt),
        other => panic!("{other:?}"),
    }
    assert_eq!(typed.snapshot(), by_call.snapshot());
    assert_eq!(typed.snapshot(), by_command.snapshot());
}

#[test]
fn journaled_commands_replay_to_identical_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.db");
    let event = Event::from_json(&fixture("identify.json")).unwrap();
    let live = {
        let store = userops_store::Store::open(&path).unwrap();
        store.execute(Command::ingest(event)).unwrap();
        let bytes = store.engine().snapshot();
        bytes
    };
    let reopened = userops_store::Store::open(&path).unwrap();
    assert_eq!(reopened.engine().snapshot(), live);
}
