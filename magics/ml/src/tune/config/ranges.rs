//! `ParameterRanges`: integer, continuous and categorical ranges with their scaling, checked
//! as SageMaker checks them, made into the search space.

use super::*;

fn scaling(v: Option<&Json>, path: &str) -> Result<Option<Scaling>, MlError> {
    let Some(v) = v else { return Ok(None) };
    let s = one_of(
        v,
        &format!("{path}.ScalingType"),
        &["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"],
    )?;
    Ok(match s {
        "Linear" => Some(Scaling::Linear),
        "Logarithmic" => Some(Scaling::Logarithmic),
        "ReverseLogarithmic" => Some(Scaling::ReverseLogarithmic),
        _ => None,
    })
}

/// Auto scaling: logarithmic for a positive range spanning two orders of magnitude or more,
/// linear otherwise.
fn auto_scaling(min: f64, max: f64) -> Scaling {
    if min > 0.0 && max / min >= 100.0 {
        Scaling::Logarithmic
    } else {
        Scaling::Linear
    }
}

fn check_scaling(s: Scaling, min: f64, max: f64, path: &str) -> Result<(), MlError> {
    match s {
        Scaling::Logarithmic if min <= 0.0 => Err(bad(format!(
            "{path}: Logarithmic scaling needs a range above 0, and MinValue is {min}"
        ))),
        Scaling::ReverseLogarithmic if min < 0.0 || max >= 1.0 => Err(bad(format!(
            "{path}: ReverseLogarithmic scaling needs 0 <= MinValue <= MaxValue < 1 (the range is {min} to {max})"
        ))),
        _ => Ok(()),
    }
}

fn entries<'a>(ranges: &'a Json, key: &str, path: &str) -> Result<Vec<&'a Json>, MlError> {
    match field(ranges, key) {
        None => Ok(Vec::new()),
        Some(Json::Array(items)) if items.len() <= 30 => Ok(items.iter().collect()),
        Some(Json::Array(items)) => Err(bad(format!(
            "{path}.{key} has {} entries; at most 30 are allowed",
            items.len()
        ))),
        Some(_) => Err(bad(format!("{path}.{key} must be a list"))),
    }
}

/// The ranges of `ParameterRanges` (or a definition's `HyperParameterRanges`).
pub fn parse_ranges(v: &Json, path: &str) -> Result<Space, MlError> {
    let mut params = Vec::new();
    for (i, e) in entries(v, "IntegerParameterRanges", path)?
        .into_iter()
        .enumerate()
    {
        let at = format!("{path}.IntegerParameterRanges[{i}]");
        let (name, min, max, s) = numeric_range(e, &at)?;
        let at = format!("{at} ({name})");
        let (min_i, max_i) = (min.round() as i64, max.round() as i64);
        if min.fract() != 0.0 || max.fract() != 0.0 {
            return Err(bad(format!("{at}: MinValue and MaxValue must be integers")));
        }
        let scaling = s.unwrap_or_else(|| auto_scaling(min, max));
        check_scaling(scaling, min, max, &at)?;
        params.push(Param {
            name,
            domain: Domain::Integer {
                min: min_i,
                max: max_i,
                scaling,
            },
        });
    }
    for (i, e) in entries(v, "ContinuousParameterRanges", path)?
        .into_iter()
        .enumerate()
    {
        let at = format!("{path}.ContinuousParameterRanges[{i}]");
        let (name, min, max, s) = numeric_range(e, &at)?;
        let at = format!("{at} ({name})");
        let scaling = s.unwrap_or_else(|| auto_scaling(min, max));
        check_scaling(scaling, min, max, &at)?;
        params.push(Param {
            name,
            domain: Domain::Continuous { min, max, scaling },
        });
    }
    for (i, e) in entries(v, "CategoricalParameterRanges", path)?
        .into_iter()
        .enumerate()
    {
        let at = format!("{path}.CategoricalParameterRanges[{i}]");
        let name = range_name(e, &at)?;
        let values = match field(e, "Values") {
            Some(Json::Array(values)) if !values.is_empty() && values.len() <= 30 => values
                .iter()
                .map(|x| string(x, &format!("{at}.Values")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(bad(format!(
                    "{at} ({name}): Values must be a list of 1 to 30 strings"
                )))
            }
        };
        let distinct: BTreeSet<&String> = values.iter().collect();
        if distinct.len() != values.len() {
            return Err(bad(format!("{at} ({name}): Values repeats a value")));
        }
        params.push(Param {
            name,
            domain: Domain::Categorical(values),
        });
    }
    let mut seen = BTreeSet::new();
    for p in &params {
        if !seen.insert(p.name.clone()) {
            return Err(bad(format!(
                "{path}: the hyperparameter `{}` has more than one range",
                p.name
            )));
        }
    }
    Ok(Space { params })
}

fn range_name(e: &Json, at: &str) -> Result<String, MlError> {
    let name = field(e, "Name").ok_or_else(|| bad(format!("{at}.Name is missing")))?;
    let name = string(name, &format!("{at}.Name"))?;
    if name.is_empty() {
        return Err(bad(format!("{at}.Name is empty")));
    }
    Ok(name)
}

fn numeric_range(e: &Json, at: &str) -> Result<(String, f64, f64, Option<Scaling>), MlError> {
    let name = range_name(e, at)?;
    let at = format!("{at} ({name})");
    let get = |key: &str| {
        field(e, key)
            .ok_or_else(|| bad(format!("{at}.{key} is missing")))
            .and_then(|v| number(v, &format!("{at}.{key}")))
    };
    let (min, max) = (get("MinValue")?, get("MaxValue")?);
    if min > max {
        return Err(bad(format!("{at}: MinValue {min} is above MaxValue {max}")));
    }
    Ok((name, min, max, scaling(field(e, "ScalingType"), &at)?))
}
