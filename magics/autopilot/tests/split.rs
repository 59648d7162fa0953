use polars::prelude::*;
use rustmaker_autopilot::split::{permutation, split, with_target};

fn table() -> DataFrame {
    let n = 100;
    let x: Vec<f64> = (0..n).map(f64::from).collect();
    // 80 "a", 20 "b".
    let y: Vec<&str> = (0..n).map(|i| if i % 5 == 0 { "b" } else { "a" }).collect();
    df!("x" => x, "y" => y).unwrap()
}

fn count(frame: &DataFrame, label: &str) -> usize {
    match rustmaker_ml::prep::column(frame, "y").unwrap() {
        rustmaker_ml::prep::Values::Text(v) => {
            v.iter().filter(|s| s.as_deref() == Some(label)).count()
        }
        rustmaker_ml::prep::Values::Numbers(_) => panic!("labels are text"),
    }
}

#[test]
fn classes_are_split_one_by_one_and_a_seed_gives_the_same_rows() {
    let t = table();
    let (train, validation) = split(&t, "y", true, 0.2, 3).unwrap();
    assert_eq!((train.height(), validation.height()), (80, 20));
    assert_eq!((count(&validation, "a"), count(&validation, "b")), (16, 4));
    let (_, again) = split(&t, "y", true, 0.2, 3).unwrap();
    assert!(validation.equals(&again));
    let (_, other) = split(&t, "y", true, 0.2, 4).unwrap();
    assert!(!validation.equals(&other), "another seed, other rows");
    // No row is on both sides, none is lost.
    let numbers = |f: &DataFrame| match rustmaker_ml::prep::column(f, "x").unwrap() {
        rustmaker_ml::prep::Values::Numbers(v) => v.into_iter().flatten().collect::<Vec<f64>>(),
        rustmaker_ml::prep::Values::Text(_) => panic!("x is numeric"),
    };
    let mut xs: Vec<i64> = numbers(&train)
        .into_iter()
        .chain(numbers(&validation))
        .map(|v| v as i64)
        .collect();
    xs.sort_unstable();
    assert_eq!(xs, (0..100).collect::<Vec<_>>());
    // A regression table is split as one group; a tiny class still gets a row on each side.
    let (train, validation) = split(&t, "x", false, 0.25, 1).unwrap();
    assert_eq!((train.height(), validation.height()), (75, 25));
    let tiny = df!("x" => [1.0, 2.0, 3.0, 4.0, 5.0], "y" => ["a", "a", "a", "b", "b"]).unwrap();
    let (train, validation) = split(&tiny, "y", true, 0.2, 0).unwrap();
    assert_eq!((count(&train, "b"), count(&validation, "b")), (1, 1));
    let one = df!("x" => [1.0], "y" => ["a"]).unwrap();
    assert!(split(&one, "y", true, 0.2, 0)
        .unwrap_err()
        .to_string()
        .contains("at least two"));
}

#[test]
fn rows_without_a_target_are_left_out_and_permutations_are_seeded() {
    let t =
        df!("x" => [1.0, 2.0, 3.0, 4.0], "y" => [Some("a"), None, Some(" "), Some("b")]).unwrap();
    assert_eq!(with_target(&t, "y").unwrap().height(), 2);
    let numbers = df!("x" => [1.0, 2.0], "y" => [Some(1.0), None]).unwrap();
    assert_eq!(with_target(&numbers, "y").unwrap().height(), 1);
    let p = permutation(50, 9);
    let mut sorted = p.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    assert_eq!(p, permutation(50, 9));
    assert_ne!(p, permutation(50, 10));
}
