//! The kernel's frame store: named polars DataFrames that magics produce and consume
//! (`%%sql -o name`, `%%send_to_spark -i name -t df`, later `%train --data name`).
//!
//! Frames live in the kernel process for the life of the kernel; a frame replaced under the
//! same name is dropped, nothing else is touched.

use std::collections::BTreeMap;

use polars::prelude::DataFrame;

use crate::context::MagicError;

/// Named DataFrames, sorted by name.
#[derive(Default)]
pub struct FrameStore {
    frames: BTreeMap<String, DataFrame>,
}

impl FrameStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `frame` as `name`, replacing any frame of that name. Names are identifiers
    /// (`[A-Za-z_][A-Za-z0-9_]*`) so they can be used as Spark and Rust variable names too.
    pub fn insert(&mut self, name: &str, frame: DataFrame) -> Result<(), MagicError> {
        check_name(name)?;
        self.frames.insert(name.to_owned(), frame);
        Ok(())
    }

    /// The frame called `name`, or an error listing the frames there are.
    pub fn get(&self, name: &str) -> Result<&DataFrame, MagicError> {
        self.frames.get(name).ok_or_else(|| {
            let known = if self.frames.is_empty() {
                "the frame store is empty".to_owned()
            } else {
                format!(
                    "frames: {}",
                    self.frames.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            MagicError::Data(format!(
                "no frame named `{name}` ({known}); create one with `%%sql -o {name}`"
            ))
        })
    }

    pub fn remove(&mut self, name: &str) -> Option<DataFrame> {
        self.frames.remove(name)
    }

    /// (name, frame) pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DataFrame)> {
        self.frames.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Accepts identifiers only: the name becomes a variable on the Spark side.
pub fn check_name(name: &str) -> Result<(), MagicError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(MagicError::Failed(format!(
            "`{name}` is not a valid frame name: use letters, digits and `_`, not starting with a digit"
        )))
    }
}

/// `%frames [NAME]`: what the frame store holds.
pub struct FramesMagic;

impl crate::Magic for FramesMagic {
    fn name(&self) -> &str {
        "frames"
    }
    fn forms(&self) -> &[crate::MagicForm] {
        &[crate::MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "List the kernel's DataFrames (from `%%sql -o` and other magics), or show one."
    }
    fn help(&self) -> String {
        "%frames [NAME] [--drop]\n\nWithout NAME: each frame with its shape and column types.\n\
         With NAME: its columns and types and its first rows; --drop removes it.\n\nExample:\n  %frames top"
            .into()
    }
    fn run(
        &self,
        call: &crate::MagicCall,
        ctx: &mut dyn crate::MagicContext,
    ) -> Result<(), MagicError> {
        let argv = call.argv()?;
        let drop = argv.iter().any(|a| a == "--drop");
        let names: Vec<&String> = argv.iter().filter(|a| *a != "--drop").collect();
        let describe = |name: &str, df: &DataFrame| {
            let mut text = format!("{name}: {} rows × {} columns\n", df.height(), df.width());
            for c in df.columns() {
                text.push_str(&format!("  {}: {}\n", c.name(), c.dtype()));
            }
            text
        };
        match names.as_slice() {
            [] if drop => Err(MagicError::usage("frames", "--drop needs a frame NAME")),
            [] => {
                let store = ctx.frames();
                let text = if store.is_empty() {
                    "The frame store is empty; `%%sql -o NAME` stores a query's result.\n"
                        .to_owned()
                } else {
                    store.iter().map(|(n, df)| describe(n, df)).collect()
                };
                ctx.stdout(&text);
                Ok(())
            }
            [name] if drop => {
                ctx.frames().get(name)?;
                ctx.frames().remove(name);
                ctx.stdout(&format!("Dropped frame `{name}`.\n"));
                Ok(())
            }
            [name] => {
                let text = {
                    let df = ctx.frames().get(name)?;
                    format!("{}{df}\n", describe(name, df))
                };
                ctx.stdout(&text);
                Ok(())
            }
            _ => Err(MagicError::usage(
                "frames",
                "usage: %frames [NAME] [--drop]",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn stores_replaces_and_names_missing_frames() {
        let mut store = FrameStore::new();
        let df = df!("a" => [1i64, 2]).unwrap();
        store.insert("t", df.clone()).unwrap();
        store.insert("t", df!("b" => ["x"]).unwrap()).unwrap();
        assert_eq!(store.get("t").unwrap().width(), 1);
        assert_eq!(store.get("t").unwrap().get_column_names()[0].as_str(), "b");
        let err = store.get("u").unwrap_err().to_string();
        assert!(
            err.contains("no frame named `u`") && err.contains("frames: t"),
            "{err}"
        );
        assert!(store.insert("1bad", df).is_err());
        assert!(store.insert("has space", DataFrame::empty()).is_err());
    }
}
