//! The unit tests of `wizard.rs`.

use super::*;

fn fields(pairs: &[(&str, &str)]) -> Fields {
    Fields::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Define Job's generic part for a contact job on New Password Requested (C).
fn job(f: &Fields) -> Result<JobPart, FieldErrors> {
    let mut errors = FieldErrors::new();
    let part = parse_job(
        EventType::NewPasswordRequested,
        Some(TargetKind::Contact),
        f,
        &mut errors,
    );
    if errors.is_empty() {
        Ok(part)
    } else {
        Err(errors)
    }
}

#[test]
fn delay_values_are_checked() {
    let base = [
        ("job", "send_new_password_to_contact"),
        ("use_event_parameter", "on"),
        ("delay", "yes"),
        ("delay_unit", "minutes"),
    ];
    for (value, ok) in [
        ("", false),
        ("0", false),
        ("-1", false),
        ("1e9", false),
        ("abc", false),
        ("1.5", false),
        ("10", true),
        ("525600", true),
        ("525601", false),
    ] {
        let mut f = fields(&base);
        f.set("delay_value", value);
        let r = job(&f);
        assert_eq!(r.is_ok(), ok, "{value:?}: {r:?}");
        if !ok {
            assert!(r.unwrap_err().contains_key("delay_value"), "{value:?}");
        }
    }
    let mut f = fields(&base);
    f.set("delay_unit", "fortnights");
    f.set("delay_value", "1");
    assert!(job(&f).unwrap_err().contains_key("delay_unit"));
    let mut f = fields(&base);
    f.set("delay", "no");
    f.set("delay_value", "garbage");
    assert_eq!(
        job(&f).unwrap().delay,
        None,
        "values are ignored with Delay No"
    );
}

#[test]
fn execution_hours_are_read_from_two_times() {
    let hours = |from: &str, to: &str| {
        let mut errors = FieldErrors::new();
        let mut f = fields(&[]);
        f.set("hours_from", from);
        f.set("hours_to", to);
        (parse_hours(&f, &mut errors), errors)
    };
    assert_eq!(hours("", "").0, Hours::ALL_DAY);
    assert_eq!(hours("00:00", "00:00").0, Hours::ALL_DAY);
    assert_eq!(hours("09:00", "17:30").0, Hours::new(540, 1050).unwrap());
    assert_eq!(hours("09:00:59", "").0, Hours::new(540, 1440).unwrap());
    let (_, errors) = hours("17:00", "09:00");
    assert!(errors.get("hours_to").unwrap().contains("over midnight"));
    let (_, errors) = hours("9 am", "25:00");
    assert!(errors.contains_key("hours_from") && errors.contains_key("hours_to"));
}
