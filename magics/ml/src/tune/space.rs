//! The search space: SageMaker's integer, continuous and categorical ranges with their
//! scaling, and the map between a point (the values a training job gets) and the unit cube
//! the optimisers work in. A categorical range takes one dimension per value (one-hot) so
//! that no order is invented between its values.

use std::collections::BTreeMap;

use crate::algorithms::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    Linear,
    Logarithmic,
    ReverseLogarithmic,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Integer {
        min: i64,
        max: i64,
        scaling: Scaling,
    },
    Continuous {
        min: f64,
        max: f64,
        scaling: Scaling,
    },
    Categorical(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub domain: Domain,
}

/// One value of a parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    /// The index of the categorical value.
    Choice(usize),
}

pub type Point = Vec<Value>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Space {
    pub params: Vec<Param>,
}

fn forward(x: f64, min: f64, max: f64, scaling: Scaling) -> f64 {
    let u = match scaling {
        Scaling::Linear => (x - min) / (max - min),
        Scaling::Logarithmic => (x.ln() - min.ln()) / (max.ln() - min.ln()),
        Scaling::ReverseLogarithmic => {
            ((1.0 - min).ln() - (1.0 - x).ln()) / ((1.0 - min).ln() - (1.0 - max).ln())
        }
    };
    if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn backward(u: f64, min: f64, max: f64, scaling: Scaling) -> f64 {
    let u = u.clamp(0.0, 1.0);
    let x = match scaling {
        Scaling::Linear => min + u * (max - min),
        Scaling::Logarithmic => (min.ln() + u * (max.ln() - min.ln())).exp(),
        Scaling::ReverseLogarithmic => {
            1.0 - ((1.0 - min).ln() + u * ((1.0 - max).ln() - (1.0 - min).ln())).exp()
        }
    };
    x.clamp(min, max)
}

impl Param {
    /// Dimensions in the unit cube.
    pub fn width(&self) -> usize {
        match &self.domain {
            Domain::Categorical(values) => values.len(),
            _ => 1,
        }
    }

    fn encode_into(&self, v: Value, out: &mut Vec<f64>) {
        match (&self.domain, v) {
            (Domain::Integer { min, max, scaling }, Value::Int(i)) => {
                if min == max {
                    out.push(0.5);
                } else {
                    // An integer owns the slice of the cube that rounds to it.
                    let (lo, hi) = (*min as f64 - 0.4999, *max as f64 + 0.4999);
                    let (lo, hi) = if *scaling == Scaling::Linear {
                        (lo, hi)
                    } else {
                        (*min as f64, *max as f64)
                    };
                    out.push(forward(i as f64, lo, hi, *scaling));
                }
            }
            (Domain::Continuous { min, max, scaling }, Value::Float(x)) => {
                out.push(if min == max {
                    0.5
                } else {
                    forward(x, *min, *max, *scaling)
                })
            }
            (Domain::Categorical(values), Value::Choice(c)) => {
                out.extend((0..values.len()).map(|i| if i == c { 1.0 } else { 0.0 }))
            }
            _ => unreachable!("a value of the parameter's own kind"),
        }
    }

    fn decode(&self, u: &[f64]) -> Value {
        match &self.domain {
            Domain::Integer { min, max, scaling } => {
                if min == max {
                    return Value::Int(*min);
                }
                let (lo, hi) = if *scaling == Scaling::Linear {
                    (*min as f64 - 0.4999, *max as f64 + 0.4999)
                } else {
                    (*min as f64, *max as f64)
                };
                Value::Int((backward(u[0], lo, hi, *scaling).round() as i64).clamp(*min, *max))
            }
            Domain::Continuous { min, max, scaling } => Value::Float(if min == max {
                *min
            } else {
                backward(u[0], *min, *max, *scaling)
            }),
            Domain::Categorical(_) => Value::Choice(crate::metrics::argmax(u)),
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> Value {
        match &self.domain {
            Domain::Categorical(values) => Value::Choice(rng.below(values.len())),
            _ => self.decode(&[rng.unit()]),
        }
    }

    pub fn text(&self, v: Value) -> String {
        match (&self.domain, v) {
            (_, Value::Int(i)) => i.to_string(),
            (_, Value::Float(x)) => format!("{x}"),
            (Domain::Categorical(values), Value::Choice(c)) => values[c].clone(),
            (_, Value::Choice(c)) => c.to_string(),
        }
    }

    /// The value a hyperparameter string stands for, if it lies in this range.
    pub fn parse(&self, text: &str) -> Option<Value> {
        match &self.domain {
            Domain::Integer { min, max, .. } => {
                let f: f64 = text.trim().parse().ok()?;
                let i = f.round() as i64;
                (f.fract() == 0.0 && (*min..=*max).contains(&i)).then_some(Value::Int(i))
            }
            Domain::Continuous { min, max, .. } => {
                let f: f64 = text.trim().parse().ok()?;
                (*min <= f && f <= *max).then_some(Value::Float(f))
            }
            Domain::Categorical(values) => values.iter().position(|v| v == text).map(Value::Choice),
        }
    }

    pub fn is_discrete(&self) -> bool {
        !matches!(self.domain, Domain::Continuous { .. })
    }

    /// How many values a discrete parameter has.
    pub fn cardinality(&self) -> Option<u128> {
        match &self.domain {
            Domain::Integer { min, max, .. } => Some((max - min) as u128 + 1),
            Domain::Categorical(values) => Some(values.len() as u128),
            Domain::Continuous { .. } => None,
        }
    }
}

impl Space {
    pub fn dims(&self) -> usize {
        self.params.iter().map(Param::width).sum()
    }

    pub fn encode(&self, point: &[Value]) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.dims());
        for (p, v) in self.params.iter().zip(point) {
            p.encode_into(*v, &mut out);
        }
        out
    }

    /// The point a spot of the unit cube falls on (integers rounded, the largest one-hot
    /// coordinate chosen).
    pub fn decode(&self, u: &[f64]) -> Point {
        let mut at = 0;
        self.params
            .iter()
            .map(|p| {
                let v = p.decode(&u[at..at + p.width()]);
                at += p.width();
                v
            })
            .collect()
    }

    pub fn sample(&self, rng: &mut Rng) -> Point {
        self.params.iter().map(|p| p.sample(rng)).collect()
    }

    /// `n` points spread as a Latin hypercube: each numeric range is cut into `n` strata and
    /// every stratum is used once; categorical values are dealt out in turn.
    pub fn latin_hypercube(&self, n: usize, rng: &mut Rng) -> Vec<Point> {
        let mut columns: Vec<Vec<Value>> = Vec::new();
        for p in &self.params {
            let mut column: Vec<Value> = match &p.domain {
                Domain::Categorical(values) => {
                    (0..n).map(|i| Value::Choice(i % values.len())).collect()
                }
                _ => (0..n)
                    .map(|i| p.decode(&[(i as f64 + rng.unit()) / n as f64]))
                    .collect(),
            };
            rng.shuffle(&mut column);
            columns.push(column);
        }
        (0..n)
            .map(|i| columns.iter().map(|c| c[i]).collect())
            .collect()
    }

    pub fn to_strings(&self, point: &[Value]) -> BTreeMap<String, String> {
        self.params
            .iter()
            .zip(point)
            .map(|(p, v)| (p.name.clone(), p.text(*v)))
            .collect()
    }

    /// A training job's tuned hyperparameters read back, if every one lies in this space.
    pub fn parse(&self, values: &BTreeMap<String, String>) -> Option<Point> {
        self.params
            .iter()
            .map(|p| values.get(&p.name).and_then(|t| p.parse(t)))
            .collect()
    }

    /// Every combination of a space of discrete ranges, the last range changing fastest.
    pub fn grid(&self) -> Vec<Point> {
        let mut points: Vec<Point> = vec![Vec::new()];
        for p in &self.params {
            let values: Vec<Value> = match &p.domain {
                Domain::Categorical(v) => (0..v.len()).map(Value::Choice).collect(),
                Domain::Integer { min, max, .. } => (*min..=*max).map(Value::Int).collect(),
                Domain::Continuous { .. } => return Vec::new(),
            };
            points = points
                .into_iter()
                .flat_map(|pt| {
                    values.iter().map(move |v| {
                        let mut next = pt.clone();
                        next.push(*v);
                        next
                    })
                })
                .collect();
        }
        points
    }

    /// The number of distinct points, when every range is discrete.
    pub fn size(&self) -> Option<u128> {
        self.params
            .iter()
            .map(Param::cardinality)
            .try_fold(1u128, |acc, c| c.map(|c| acc.saturating_mul(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        Space {
            params: vec![
                Param {
                    name: "eta".into(),
                    domain: Domain::Continuous {
                        min: 1e-4,
                        max: 1.0,
                        scaling: Scaling::Logarithmic,
                    },
                },
                Param {
                    name: "depth".into(),
                    domain: Domain::Integer {
                        min: 2,
                        max: 10,
                        scaling: Scaling::Linear,
                    },
                },
                Param {
                    name: "booster".into(),
                    domain: Domain::Categorical(vec!["gbtree".into(), "dart".into()]),
                },
                Param {
                    name: "momentum".into(),
                    domain: Domain::Continuous {
                        min: 0.9,
                        max: 0.9999,
                        scaling: Scaling::ReverseLogarithmic,
                    },
                },
            ],
        }
    }

    #[test]
    fn encoding_round_trips_and_scales() {
        let s = space();
        assert_eq!(s.dims(), 5);
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let p = s.sample(&mut rng);
            let back = s.decode(&s.encode(&p));
            for (a, b) in p.iter().zip(&back) {
                match (a, b) {
                    (Value::Float(x), Value::Float(y)) => assert!((x - y).abs() <= 1e-9 * x.abs()),
                    _ => assert_eq!(a, b),
                }
            }
            assert_eq!(
                s.parse(&s.to_strings(&p)).map(|q| s.encode(&q)),
                Some(s.encode(&p))
            );
        }
        // Logarithmic: the middle of the cube is the geometric middle of the range.
        let mid = s.decode(&[0.5, 0.5, 1.0, 0.0, 0.5]);
        let Value::Float(eta) = mid[0] else { panic!() };
        assert!((eta - 1e-2).abs() < 1e-12);
        // Reverse logarithmic: the middle is 1 - sqrt((1 - 0.9)(1 - 0.9999)).
        let Value::Float(m) = mid[3] else { panic!() };
        assert!((m - (1.0 - (0.1f64 * 0.0001).sqrt())).abs() < 1e-12);
        // Every integer of a linear range is equally likely.
        let mut counts = [0usize; 9];
        for _ in 0..9000 {
            if let Value::Int(d) = s.params[1].sample(&mut rng) {
                counts[(d - 2) as usize] += 1;
            }
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }

    #[test]
    fn grid_and_latin_hypercube() {
        let s = Space {
            params: vec![space().params[2].clone(), space().params[1].clone()],
        };
        let grid = s.grid();
        assert_eq!(grid.len(), 18);
        assert_eq!(s.size(), Some(18));
        assert_eq!(grid[1], vec![Value::Choice(0), Value::Int(3)]);
        let lhs = space().latin_hypercube(10, &mut Rng::new(1));
        let mut strata: Vec<usize> = lhs
            .iter()
            .map(|p| (space().encode(p)[0] * 10.0) as usize)
            .collect();
        strata.sort_unstable();
        assert_eq!(strata, (0..10).collect::<Vec<_>>());
    }
}
