use polars::prelude::*;
use rustmaker_autopilot::analysis::analyse;
use rustmaker_autopilot::exploration;

fn table() -> DataFrame {
    let n = 120;
    let x: Vec<f64> = (0..n).map(|i| f64::from(i % 17) * 0.5).collect();
    let colour: Vec<Option<&str>> = (0..n)
        .map(|i| match i % 4 {
            0 => None,
            1 => Some("red"),
            _ => Some("blue|green"),
        })
        .collect();
    let label: Vec<Option<&str>> = (0..n)
        .map(|i| match i {
            0 | 1 => None,
            _ if i % 6 == 0 => Some("rare <b>|x"),
            _ => Some("common"),
        })
        .collect();
    df!("x" => x, "colour" => colour, "label" => label).unwrap()
}

#[test]
fn the_report_is_an_nbformat_4_5_notebook_for_this_kernel_with_every_section() {
    let frame = table();
    let a = analyse(&frame, "label", None).unwrap();
    let notebook = exploration::notebook("churn-1", &a, &frame.head(Some(10)));
    let json = notebook.to_json();
    let parsed = match nbformat::parse_notebook(&json).unwrap() {
        nbformat::Notebook::V4(nb) => nb,
        _ => panic!("not a strict nbformat 4.5 notebook"),
    };
    let spec = parsed.metadata.kernelspec.unwrap();
    assert_eq!(
        (spec.name.as_str(), spec.display_name.as_str()),
        ("rustmaker", "Rust (rustmaker)")
    );
    let text: Vec<String> = parsed.cells.iter().map(|c| c.source().concat()).collect();
    for heading in [
        "# rustmaker Autopilot Data Exploration",
        "## Dataset Sample",
        "## Column Analysis",
        "### Percent of Missing Values",
        "### Count Statistics",
        "### Descriptive Statistics",
        "## Target Analysis",
        "## Duplicate Rows",
        "## Cross Column Correlations",
        "## The Job",
    ] {
        assert!(text.iter().any(|t| t.starts_with(heading)), "no {heading}");
    }
    let all = text.join("\n");
    assert!(
        all.contains("**churn-1**") && all.contains("**`BinaryClassification`** problem"),
        "{all}"
    );
    assert!(all.contains("We read **`120`** rows with **`2`** feature columns"));
    // 118 rows keep their target; colour is missing in 29 of them (every fourth row but row 0).
    assert!(all.contains("| `colour` | 24.58% |"), "{all}");
    assert!(all.contains("2 rows had no target"));
    // Text that would break the markdown or the HTML is escaped.
    assert!(all.contains("| `rare <b>\\|x` | 19 |"), "{all}");
    assert!(
        all.contains("<td>blue|green</td>") && all.contains("<td>rare &lt;b&gt;|x</td>"),
        "{all}"
    );
    assert!(all.contains("<table class=\"dataframe\">"));
    assert!(
        all.contains("fewer than two numeric features"),
        "one numeric column, no pair"
    );
    assert!(
        text.contains(&"%autopilot describe churn-1".to_owned()),
        "its code cell is a magic"
    );
    let chart = parsed
        .cells
        .iter()
        .find_map(|c| match c {
            nbformat::v4::Cell::Markdown {
                attachments: Some(a),
                ..
            } => Some(a.clone()),
            _ => None,
        })
        .unwrap();
    assert!(chart["target.svg"]["image/svg+xml"]
        .as_str()
        .unwrap()
        .starts_with("<svg"));
    // The same job gives the same file.
    assert_eq!(
        exploration::notebook("churn-1", &a, &frame.head(Some(10))).to_json(),
        json
    );
    let dir = std::env::temp_dir().join(format!("exploration-{}", std::process::id()));
    let path = dir.join("notebooks/SageMakerAutopilotDataExplorationNotebook.ipynb");
    notebook.write(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), json);
    std::fs::remove_dir_all(dir).unwrap();
}
