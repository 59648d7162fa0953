//! The optimiser without training jobs: JSON lines over a reader and a writer. The first line
//! sets the search up — `{"Strategy": "Bayesian", "ParameterRanges": {…}, "RandomSeed": 1,
//! "MaxNumberOfTrainingJobs": 50, "Type": "Minimize"}` — then each `{"ask": true}` gets
//! `{"trial": N, "params": {…}, "seconds": S}` (S: the optimiser's own time) and each
//! `{"tell": N, "value": V}` gets `{"ok": true}`. A bad line gets `{"error": "…"}` and the
//! session goes on. `rustmaker tune-ask-tell` serves it on stdin/stdout.

use std::io::{BufRead, Write};

use serde_json::{json, Value as Json};

use super::config;
use super::space::{Point, Value};
use super::strategy::{Observation, Optimizer, Strategy};
use crate::MlError;

fn setup(line: &str) -> Result<(Optimizer, bool), MlError> {
    let v: Json = serde_json::from_str(line)
        .map_err(|e| MlError::Input(format!("the first line must be the search as JSON: {e}")))?;
    let strategy = match v
        .get("Strategy")
        .and_then(Json::as_str)
        .unwrap_or("Bayesian")
    {
        "Bayesian" => Strategy::Bayesian,
        "Random" => Strategy::Random,
        other => {
            return Err(MlError::Input(format!(
                "Strategy `{other}`: ask/tell serves Bayesian and Random"
            )))
        }
    };
    let ranges = v
        .get("ParameterRanges")
        .ok_or_else(|| MlError::Input("ParameterRanges is missing".into()))?;
    let space = config::parse_ranges(ranges, "ParameterRanges")?;
    let seed = v.get("RandomSeed").and_then(Json::as_u64).unwrap_or(0);
    let budget = v
        .get("MaxNumberOfTrainingJobs")
        .and_then(Json::as_u64)
        .unwrap_or(100) as usize;
    let maximize = v.get("Type").and_then(Json::as_str) == Some("Maximize");
    Ok((
        Optimizer::new(strategy, vec![space], seed, budget),
        maximize,
    ))
}

fn value_json(p: &super::space::Param, v: Value) -> Json {
    match v {
        Value::Int(i) => json!(i),
        Value::Float(x) => json!(x),
        Value::Choice(_) => json!(p.text(v)),
    }
}

pub fn serve(input: impl BufRead, mut output: impl Write) -> Result<(), MlError> {
    let io = |e: std::io::Error| MlError::Input(format!("ask/tell: {e}"));
    let mut lines = input.lines();
    let (mut optimizer, maximize) = loop {
        let Some(line) = lines.next() else {
            return Ok(());
        };
        match setup(&line.map_err(io)?) {
            Ok(s) => break s,
            Err(e) => writeln!(output, "{}", json!({"error": e.to_string()})).map_err(io)?,
        }
        output.flush().map_err(io)?;
    };
    writeln!(output, "{}", json!({"ok": true})).map_err(io)?;
    output.flush().map_err(io)?;
    let mut given: Vec<Point> = Vec::new();
    let mut told: Vec<Option<f64>> = Vec::new();
    let mut observed: Vec<Observation> = Vec::new();
    for line in lines {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Json>(&line) {
            Err(e) => json!({"error": format!("not JSON: {e}")}),
            Ok(msg) if msg.get("ask").is_some() => {
                let pending: Vec<(usize, Point)> = given
                    .iter()
                    .zip(&told)
                    .filter(|(_, t)| t.is_none())
                    .map(|(p, _)| (0, p.clone()))
                    .collect();
                let tried: Vec<(usize, Point)> = given.iter().map(|p| (0, p.clone())).collect();
                match optimizer.suggest(&observed, &pending, &tried) {
                    None => json!({"error": "the space has no untried point left"}),
                    Some(s) => {
                        let space = &optimizer.spaces()[0];
                        let params: serde_json::Map<String, Json> = space
                            .params
                            .iter()
                            .zip(&s.point)
                            .map(|(p, v)| (p.name.clone(), value_json(p, *v)))
                            .collect();
                        given.push(s.point);
                        told.push(None);
                        json!({"trial": given.len() - 1, "params": params, "seconds": s.seconds})
                    }
                }
            }
            Ok(msg) => match (
                msg.get("tell").and_then(Json::as_u64),
                msg.get("value").and_then(Json::as_f64),
            ) {
                (Some(t), Some(v)) if (t as usize) < given.len() && told[t as usize].is_none() => {
                    told[t as usize] = Some(v);
                    observed.push(Observation {
                        definition: 0,
                        point: given[t as usize].clone(),
                        loss: if maximize { -v } else { v },
                    });
                    json!({"ok": true})
                }
                (Some(t), Some(_)) => {
                    json!({"error": format!("trial {t} was never asked for, or was told already")})
                }
                _ => json!({"error": "send {\"ask\": true} or {\"tell\": N, \"value\": V}"}),
            },
        };
        writeln!(output, "{reply}").map_err(io)?;
        output.flush().map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_and_tells_and_survives_bad_lines() {
        let input = [
            r#"{"Strategy": "Bayesian", "RandomSeed": 3, "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "-2", "MaxValue": "2"}], "CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b"]}]}}"#,
            r#"{"ask": true}"#,
            "not json",
            r#"{"tell": 0, "value": 1.5}"#,
            r#"{"tell": 0, "value": 1.5}"#,
            r#"{"ask": true}"#,
        ]
        .join("\n");
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out).unwrap();
        let replies: Vec<Json> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(replies[0], json!({"ok": true}));
        assert_eq!(replies[1]["trial"], 0);
        let x = replies[1]["params"]["x"].as_f64().unwrap();
        assert!((-2.0..=2.0).contains(&x));
        assert!(["a", "b"].contains(&replies[1]["params"]["c"].as_str().unwrap()));
        assert!(replies[2]["error"].as_str().unwrap().contains("not JSON"));
        assert_eq!(replies[3], json!({"ok": true}));
        assert!(replies[4]["error"]
            .as_str()
            .unwrap()
            .contains("told already"));
        assert_eq!(replies[5]["trial"], 1);
    }
}
