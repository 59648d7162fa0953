//! The Glue Data Catalog as tables: databases, the tables of a database, and one table's
//! columns, storage and partitions.

use aws_sdk_glue::types::Table;
use polars::prelude::*;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{MagicContext, MagicError, MimeBundle};

use crate::client::{aws_error, failed, has_code, Aws};
use crate::show_frame;

fn time_str(t: Option<&aws_smithy_types::DateTime>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

fn not_found_hint<E, R>(
    aws: &Aws,
    what: &str,
    hint: &str,
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> MagicError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if has_code(&e, "EntityNotFoundException") {
        failed(format!("{what} does not exist in the Data Catalog: {hint}"))
    } else {
        aws_error(aws, &format!("reading {what}"), e)
    }
}

pub fn databases(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    output: Option<&str>,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let mut cols: [Vec<String>; 4] = Default::default();
    let mut token = None;
    loop {
        let out = aws
            .run(ctx, glue.get_databases().set_next_token(token).send())?
            .map_err(|e| aws_error(aws, "listing Glue databases", e))?;
        for db in out.database_list() {
            cols[0].push(db.name().into());
            cols[1].push(db.description().unwrap_or_default().into());
            cols[2].push(db.location_uri().unwrap_or_default().into());
            cols[3].push(time_str(db.create_time()));
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let [name, description, location, created] = cols;
    let df = df!("name" => name, "description" => description, "location" => location,
        "created" => created)
    .map_err(failed)?;
    show_frame(df, output, ctx)
}

pub fn tables(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    database: &str,
    output: Option<&str>,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let mut all: Vec<Table> = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .run(
                ctx,
                glue.get_tables()
                    .database_name(database)
                    .set_next_token(token)
                    .send(),
            )?
            .map_err(|e| {
                not_found_hint(
                    aws,
                    &format!("database {database}"),
                    "`%glue databases` lists them",
                    e,
                )
            })?;
        all.extend(out.table_list().iter().cloned());
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let df = df!(
        "name" => all.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "type" => all.iter().map(|t| t.table_type().unwrap_or_default()).collect::<Vec<_>>(),
        "location" => all.iter().map(|t| t.storage_descriptor().and_then(|s| s.location()).unwrap_or_default()).collect::<Vec<_>>(),
        "columns" => all.iter().map(|t| t.storage_descriptor().map(|s| s.columns().len() as u32).unwrap_or(0)).collect::<Vec<_>>(),
        "partition_keys" => all.iter().map(|t| t.partition_keys().iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")).collect::<Vec<_>>(),
        "updated" => all.iter().map(|t| time_str(t.update_time())).collect::<Vec<_>>()
    )
    .map_err(failed)?;
    show_frame(df, output, ctx)
}

/// One table: a summary line, its columns (partition keys last) as a table, its partitions.
/// `-o` keeps the columns.
pub fn table(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    qualified: &str,
    output: Option<&str>,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let (database, name) = qualified
        .split_once('.')
        .filter(|(d, t)| !d.is_empty() && !t.is_empty())
        .ok_or_else(|| {
            MagicError::usage(
                "glue",
                format!("`{qualified}`: name the table as DATABASE.TABLE"),
            )
        })?;
    let out = aws
        .run(
            ctx,
            glue.get_table().database_name(database).name(name).send(),
        )?
        .map_err(|e| {
            not_found_hint(
                aws,
                &format!("table {qualified}"),
                &format!("`%glue tables {database}` lists the tables"),
                e,
            )
        })?;
    let table = out
        .table
        .ok_or_else(|| failed(format!("Glue returned no table for {qualified}")))?;
    let sd = table.storage_descriptor();
    let serde = sd
        .and_then(|s| s.serde_info())
        .and_then(|s| s.serialization_library())
        .unwrap_or_default();
    ctx.display(
        MimeBundle::text(format!(
            "{qualified} ({})\nlocation: {}\ninput format: {}\nserde: {serde}",
            table.table_type().unwrap_or("table"),
            sd.and_then(|s| s.location()).unwrap_or_default(),
            sd.and_then(|s| s.input_format()).unwrap_or_default(),
        )),
        None,
    );
    let columns = sd.map(|s| s.columns()).unwrap_or_default();
    let keys = table.partition_keys();
    let all: Vec<_> = columns.iter().chain(keys.iter()).collect();
    let df = df!(
        "column" => all.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "type" => all.iter().map(|c| c.r#type().unwrap_or_default()).collect::<Vec<_>>(),
        "comment" => all.iter().map(|c| c.comment().unwrap_or_default()).collect::<Vec<_>>(),
        "partition_key" => (0..all.len()).map(|i| i >= columns.len()).collect::<Vec<_>>()
    )
    .map_err(failed)?;
    show_frame(df, output, ctx)?;
    if keys.is_empty() {
        return Ok(());
    }
    let mut values = Vec::new();
    let mut locations = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .run(
                ctx,
                glue.get_partitions()
                    .database_name(database)
                    .table_name(name)
                    .set_next_token(token)
                    .send(),
            )?
            .map_err(|e| aws_error(aws, &format!("listing the partitions of {qualified}"), e))?;
        for p in out.partitions() {
            values.push(
                keys.iter()
                    .zip(p.values())
                    .map(|(k, v)| format!("{}={v}", k.name()))
                    .collect::<Vec<_>>()
                    .join("/"),
            );
            locations.push(
                p.storage_descriptor()
                    .and_then(|s| s.location())
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let partitions = df!("partition" => values, "location" => locations).map_err(failed)?;
    ctx.display(frame_bundle(&partitions, 1000), None);
    Ok(())
}
