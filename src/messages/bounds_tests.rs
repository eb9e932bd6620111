//! The unit tests of `bounds.rs`.

use super::*;

fn refused(source: &str) -> String {
    match check(source) {
        Err(e) => e.to_string(),
        Ok(()) => panic!("{source:?} was accepted"),
    }
}

#[test]
fn what_marketers_write_is_accepted() {
    for source in [
        "Hello {{ contact.first_name | default(\"there\") }},",
        "{{ contact.first_name ~ \" \" ~ contact.last_name | upper }}",
        "{{ \"=\" * 40 }}\n{{ event.data.price * 1.19 }} {{ 3 * event.data.count }}",
        "{% for item in event.data.items %}- {{ item.name | title }}: {{ item.price }}\n{% endfor %}",
        "{% set name = contact.attributes.nickname or contact.first_name %}Hi {{ name }}",
        "{% set greeting %}Dear {{ contact.first_name }}{% endset %}{{ greeting | trim }}",
        "{% if contact.attributes.plan == \"pro\" %}Thanks!{% else %}Upgrade?{% endif %}",
        "{% for i in range(3) %}{{ loop.index }}{{ loop.cycle(\"a\", \"b\") }}{% endfor %}",
        "{{ event.data.tags | join(\", \") }} {{ event.data | tojson }} {{ unsubscribe_url }}",
        "{% with n = event.data.items | length %}{{ n }} items{% endwith %}",
        "{{ event.data.note | replace(\"\\n\", \"<br>\") | indent(2) }}",
        "Total: {{ \"%.2f\" | format(event.data.total) }}",
    ] {
        assert_eq!(check(source), Ok(()), "{source}");
    }
}

#[test]
fn the_doubling_that_took_a_gigabyte_is_refused_at_its_line() {
    let e = refused(
        "{% set a = \"x\" * 100000000 %}\n{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}{{ d|length }}",
    );
    assert!(e.starts_with("Line 1:"), "{e}");
    assert!(e.contains("more than 1 MiB"), "{e}");
    // Smaller starts double until they are too large too.
    let e = refused(&format!(
        "{{% set a = \"{}\" %}}\n{}",
        "x".repeat(1000),
        "{% set a = a ~ a %}\n".repeat(11)
    ));
    assert!(e.starts_with("Line 12:"), "{e}");
}

#[test]
fn growth_the_walk_cannot_bound_is_refused() {
    // A number from an event multiplying text.
    assert!(
        refused("{{ contact.first_name * event.data.n }}")
            .contains("number written in the template")
    );
    // A value built from itself round a loop.
    assert!(
        refused("{% set a = \"x\" %}{% for i in range(30) %}{% set a = a ~ a %}{% endfor %}")
            .contains("built from itself")
    );
    // Likewise when the loop unpacks each item into several names.
    assert!(
        refused(
            "{% set a = \"x\" %}{% for k, v in event.data|items %}{% set a = a ~ a %}{% endfor %}"
        )
        .contains("built from itself")
    );
    // Text put between every character of itself, by an event's value.
    refused("{{ event.data.a | replace(\"\", event.data.a) }}");
    // Namespaces (mutable across loops) and calls other than the offered ones.
    refused("{% set ns = namespace(a=\"x\") %}");
    refused("{% set ns.a = 1 %}");
    refused("{{ indent_huge | indent(100000000) }}");
    // Padding by a printf width, written or taken from an event.
    refused("{{ \"%100000000s\" | format(1) }}");
    refused("{{ \"%*s\" | format(event.data.n, 1) }}");
    refused("{{ event.data.f | format(1) }}");
    // Loops inside loops that copy long values.
    let e = refused(
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ contact.attributes ~ \"\" }}{% endfor %}{% endfor %}",
    );
    assert!(e.contains("too much work"), "{e}");
}

#[test]
fn stored_values_count_together() {
    let one = format!("{{% set a{{}} = \"{}\" * 1000 %}}", "x".repeat(1000));
    let source: String = (0..9).map(|i| one.replace("{}", &i.to_string())).collect();
    assert!(refused(&source).contains("together"));
    let source: String = (0..7).map(|i| one.replace("{}", &i.to_string())).collect();
    assert_eq!(check(&source), Ok(()));
}
