//! Automatic model tuning with SageMaker's semantics.

pub mod ask_tell;
pub mod config;
pub mod gp;
pub mod magic;
pub mod runner;
pub mod space;
pub mod stopping;
pub mod strategy;

#[cfg(test)]
mod bench_check {
    use super::space::*;
    use super::strategy::*;

    fn branin(p: &[Value]) -> f64 {
        let (Value::Float(x), Value::Float(y)) = (p[0], p[1]) else { panic!() };
        let pi = std::f64::consts::PI;
        let (a, b, c, r, s, t) = (1.0, 5.1 / (4.0 * pi * pi), 5.0 / pi, 6.0, 10.0, 1.0 / (8.0 * pi));
        a * (y - b * x * x + c * x - r).powi(2) + s * (1.0 - t) * x.cos() + s
    }

    #[test]
    #[ignore]
    fn branin_runs() {
        let space = Space {
            params: vec![
                Param { name: "x".into(), domain: Domain::Continuous { min: -5.0, max: 10.0, scaling: Scaling::Linear } },
                Param { name: "y".into(), domain: Domain::Continuous { min: 0.0, max: 15.0, scaling: Scaling::Linear } },
            ],
        };
        for seed in 0..5 {
            let mut opt = Optimizer::new(Strategy::Bayesian, vec![space.clone()], seed, 50);
            let mut obs: Vec<Observation> = Vec::new();
            let mut tried = Vec::new();
            let mut secs = 0.0;
            for _ in 0..50 {
                let s = opt.suggest(&obs, &[], &tried).unwrap();
                secs += s.seconds;
                let loss = branin(&s.point);
                tried.push((0, s.point.clone()));
                obs.push(Observation { definition: 0, point: s.point, loss });
            }
            let best = obs.iter().map(|o| o.loss).fold(f64::INFINITY, f64::min);
            let best20 = obs[..20].iter().map(|o| o.loss).fold(f64::INFINITY, f64::min);
            println!("seed {seed}: best20 {best20:.4} best50 {best:.4}, {:.3} ms/suggestion", secs * 1000.0 / 50.0);
        }
    }
}
