use polars::prelude::*;
use rustmaker_autopilot::analysis::{analyse, ColumnKind};
use rustmaker_autopilot::objective::Problem;
use rustmaker_autopilot::AutopilotError;

/// A small deterministic generator, so the tables need no crate.
fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn table(n: u64) -> DataFrame {
    let x: Vec<f64> = (0..n).map(|i| noise(i) * 10.0).collect();
    let z: Vec<f64> = (0..n).map(|i| noise(i + 7_000)).collect();
    let colour: Vec<Option<&str>> = (0..n)
        .map(|i| match i % 5 {
            0 => None,
            1 | 2 => Some("red"),
            _ => Some("blue"),
        })
        .collect();
    let review: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "the item number {} was {}",
                i % 13,
                ["fine", "great", "poor"][(i % 3) as usize]
            )
        })
        .collect();
    let day: Vec<String> = (0..n)
        .map(|i| format!("2026-03-{:02}", 1 + i % 28))
        .collect();
    let id: Vec<i64> = (0..n as i64).map(|i| 1000 + i).collect();
    let constant = vec!["same"; n as usize];
    let label: Vec<&str> = x
        .iter()
        .zip(&z)
        .map(|(x, z)| if x + z * 4.0 > 6.0 { "yes" } else { "no" })
        .collect();
    // A copy of the target in other words: the leak.
    let leak: Vec<&str> = label
        .iter()
        .map(|l| if *l == "yes" { "approved" } else { "declined" })
        .collect();
    df!("id" => id, "x" => x, "z" => z, "colour" => colour, "review" => review, "day" => day,
        "constant" => constant, "leak" => leak, "label" => label)
    .unwrap()
}

#[test]
fn columns_are_typed_and_their_problems_found() {
    let a = analyse(&table(400), "label", None).unwrap();
    assert_eq!(a.problem, Problem::BinaryClassification);
    assert_eq!(
        a.problem_reason,
        "inferred: the target holds 2 distinct labels"
    );
    assert_eq!(a.rows, 400);
    let kind = |n: &str| a.column(n).unwrap().kind;
    assert_eq!(kind("x"), ColumnKind::Numeric);
    assert_eq!(kind("colour"), ColumnKind::Categorical);
    assert_eq!(kind("review"), ColumnKind::Text);
    assert_eq!(kind("day"), ColumnKind::Datetime);
    let colour = a.column("colour").unwrap();
    assert_eq!((colour.missing, colour.unique), (80, 2));
    assert!(a.column("review").unwrap().unique_words.unwrap() >= 16);
    assert!(a.column("id").unwrap().identifier_like && !a.column("x").unwrap().identifier_like);
    assert!(a.column("constant").unwrap().constant);
    let names: Vec<&str> = a.usable().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["x", "z", "colour", "review", "day", "leak"]);
    // The leak is found; the informative but imperfect x and the identifier are not leaks.
    assert!(a.column("leak").unwrap().leakage_suspect);
    let x = a.column("x").unwrap();
    assert!(
        !x.leakage_suspect && x.target_signal > 0.6,
        "{}",
        x.target_signal
    );
    assert!(!a.column("id").unwrap().leakage_suspect);
    let s = x.summary.as_ref().unwrap();
    assert!(s.min >= 0.0 && s.max <= 10.0 && (s.mean - 5.0).abs() < 1.0);
    let all = a.suggestions.join("\n");
    for want in [
        "`leak` predicts the target almost perfectly",
        "`constant` holds a single value",
        "`id` looks like an identifier",
    ] {
        assert!(all.contains(want), "{all}");
    }
    let (yes, no) = (
        a.target.classes.iter().find(|c| c.0 == "yes").unwrap().1,
        a.target.classes.iter().find(|c| c.0 == "no").unwrap().1,
    );
    assert_eq!(yes + no, 400);
}

#[test]
fn each_problem_type_is_inferred_with_its_reason() {
    let n = 200;
    let x: Vec<f64> = (0..n).map(noise).collect();
    let frame = |y: Column| {
        DataFrame::new(n as usize, vec![Column::new("x".into(), x.clone()), y]).unwrap()
    };
    let value = frame(Column::new(
        "y".into(),
        x.iter().map(|v| v * 3.5 + 0.25).collect::<Vec<_>>(),
    ));
    let a = analyse(&value, "y", None).unwrap();
    assert_eq!(a.problem, Problem::Regression);
    assert!(
        a.problem_reason.contains("numbers with fractions"),
        "{}",
        a.problem_reason
    );
    assert!(a.target.summary.is_some() && a.target.classes.is_empty());
    // y is a function of x: a leak for a regression too.
    assert!(a.column("x").unwrap().leakage_suspect);
    let classes = frame(Column::new(
        "y".into(),
        (0..n).map(|i| (i % 4) as i64).collect::<Vec<_>>(),
    ));
    let a = analyse(&classes, "y", None).unwrap();
    assert_eq!(a.problem, Problem::MulticlassClassification);
    assert!(
        a.problem_reason.contains("4 distinct whole numbers"),
        "{}",
        a.problem_reason
    );
    assert_eq!(a.target.classes.len(), 4);
    let many = frame(Column::new(
        "y".into(),
        (0..n).map(|i| (i % 50) as i64).collect::<Vec<_>>(),
    ));
    let a = analyse(&many, "y", None).unwrap();
    assert_eq!(a.problem, Problem::Regression);
    assert!(
        a.problem_reason.contains("more than the 20"),
        "{}",
        a.problem_reason
    );
    // Given, it is kept (and said so) unless the values cannot be it.
    let a = analyse(&many, "y", Some(Problem::MulticlassClassification)).unwrap();
    assert_eq!(
        (a.problem, a.problem_reason.as_str()),
        (Problem::MulticlassClassification, "given")
    );
    let err = analyse(&classes, "y", Some(Problem::BinaryClassification))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds 4: use MulticlassClassification"),
        "{err}"
    );
    let text = frame(Column::new(
        "y".into(),
        (0..n)
            .map(|i| ["a", "b", "c"][i as usize % 3])
            .collect::<Vec<_>>(),
    ));
    let err = analyse(&text, "y", Some(Problem::Regression))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Regression needs a numeric target"), "{err}");
}

#[test]
fn tables_that_cannot_be_learned_from_are_refused_naming_why() {
    let err = analyse(&table(50), "lable", None).unwrap_err();
    assert!(matches!(err, AutopilotError::MissingTarget { .. }));
    assert!(err.to_string().contains("(did you mean `label`?)"), "{err}");
    let empty = table(0);
    assert!(matches!(
        analyse(&empty, "label", None),
        Err(AutopilotError::EmptyTable)
    ));
    let only = df!("label" => ["a", "b"]).unwrap();
    assert!(analyse(&only, "label", None)
        .unwrap_err()
        .to_string()
        .contains("holds only the target `label`"));
    let constant = df!("x" => [1.0, 2.0, 3.0], "label" => ["a", "a", "a"]).unwrap();
    let err = analyse(&constant, "label", None).unwrap_err().to_string();
    assert!(err.contains("`label` holds a single value (a)"), "{err}");
    let none = df!("x" => [1.0, 2.0], "label" => [None::<&str>, None]).unwrap();
    assert!(analyse(&none, "label", None)
        .unwrap_err()
        .to_string()
        .contains("has no values"));
    let lonely =
        df!("x" => [1.0, 2.0, 3.0, 4.0, 5.0], "label" => ["a", "a", "b", "b", "c"]).unwrap();
    let err = analyse(&lonely, "label", None).unwrap_err().to_string();
    assert!(
        err.contains("class `c` of the target `label` has a single row"),
        "{err}"
    );
    let text = df!(
        "review" => ["a very good thing indeed", "not a good thing at all", "it was fine I think", "would buy this again"],
        "label" => ["a", "b", "a", "b"]
    )
    .unwrap();
    let err = analyse(&text, "label", None).unwrap_err().to_string();
    assert!(
        err.contains("every feature column is free text (review)"),
        "{err}"
    );
}

#[test]
fn rows_without_a_target_are_left_out_and_counted_and_duplicates_found() {
    let frame = df!(
        "x" => [1.0, 2.0, 1.0, 3.0, 4.0, 5.0, 6.0, 1.0],
        "label" => [Some("a"), Some("b"), Some("a"), None, Some("b"), None, Some("a"), Some("a")]
    )
    .unwrap();
    let a = analyse(&frame, "label", None).unwrap();
    assert_eq!((a.rows, a.target.missing_rows), (8, 2));
    assert_eq!(a.target.classes, [("a".to_owned(), 4), ("b".to_owned(), 2)]);
    assert_eq!(a.target.imbalance, Some(2.0));
    // (1, a) three times: two repeat the first.
    assert_eq!(a.duplicate_rows, 2);
    let all = a.suggestions.join("\n");
    assert!(
        all.contains("2 rows have no `label` and were left out"),
        "{all}"
    );
    assert!(all.contains("2 rows repeat an earlier row"), "{all}");
}

#[test]
fn correlated_numeric_features_are_found_and_suggested() {
    let n = 50;
    // Not whole numbers, so not identifier-like.
    let x: Vec<f64> = (0..n).map(|i| f64::from(i) * 0.5 + 0.25).collect();
    let twice: Vec<Option<f64>> = (0..n)
        .map(|i| (i != 7).then(|| 2.0 * f64::from(i) + f64::from(i % 3) * 0.1))
        .collect();
    let other: Vec<f64> = (0..n).map(|i| f64::from((i * 37) % 11)).collect();
    let y: Vec<&str> = (0..n).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
    let frame = df!("x" => x, "twice" => twice, "other" => other, "y" => y).unwrap();
    let a = rustmaker_autopilot::analysis::analyse(&frame, "y", None).unwrap();
    let (p, q, r) = &a.correlations[0];
    assert_eq!((p.as_str(), q.as_str()), ("x", "twice"));
    assert!(*r > 0.99, "{r}");
    assert_eq!(
        a.correlations.len(),
        3,
        "every pair of three numeric columns"
    );
    assert!(a.correlations[1].2.abs() < 0.5);
    assert!(a
        .suggestions
        .iter()
        .any(|s| s.starts_with("`x` and `twice` are strongly correlated (r = ")));
}
