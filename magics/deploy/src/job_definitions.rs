//! Data-quality job definitions (`CreateDataQualityJobDefinition`), which the SageMaker SDK's
//! `DefaultModelMonitor` makes and then names in `CreateMonitoringSchedule`'s
//! `MonitoringJobDefinitionName`. A schedule that names one runs it as if its fields were
//! given inline: [`Hosting::resolved_schedule_config`] writes them in SageMaker's inline
//! shape (`BaselineConfig`, `MonitoringInputs`, `MonitoringOutputConfig`).

use serde_json::{json, Value};

use crate::hosting::{arn, now, Hosting, HostingError, Kind};

fn definition_name(input: &Value) -> Result<String, HostingError> {
    let name = input
        .get("JobDefinitionName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            HostingError::Validation(
                "1 validation error detected: Value null at 'JobDefinitionName' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
    rustmaker_sagemaker::check_name(name, rustmaker_sagemaker::Resource::MonitoringSchedule)
        .map_err(|e| HostingError::Validation(format!("JobDefinitionName: {e}")))?;
    Ok(name.to_owned())
}

impl Hosting {
    /// `CreateDataQualityJobDefinition`: kept as given; checked when a schedule uses it.
    pub fn create_data_quality_job_definition(&self, input: &Value) -> Result<Value, HostingError> {
        let name = definition_name(input)?;
        for field in [
            "DataQualityJobInput",
            "DataQualityJobOutputConfig",
            "DataQualityAppSpecification",
        ] {
            if input.get(field).is_none() {
                return Err(HostingError::Validation(format!("{field} is required")));
            }
        }
        let mut body = input.clone();
        body["JobDefinitionArn"] = json!(arn(Kind::DataQualityJobDefinition, &name));
        body["CreationTime"] = json!(now());
        self.insert_new(Kind::DataQualityJobDefinition, &name, &body)?;
        Ok(json!({"JobDefinitionArn": arn(Kind::DataQualityJobDefinition, &name)}))
    }

    pub fn describe_data_quality_job_definition(
        &self,
        input: &Value,
    ) -> Result<Value, HostingError> {
        self.find(Kind::DataQualityJobDefinition, &definition_name(input)?)
    }

    pub fn delete_data_quality_job_definition(&self, input: &Value) -> Result<Value, HostingError> {
        self.remove(Kind::DataQualityJobDefinition, &definition_name(input)?)?;
        Ok(json!({}))
    }

    pub fn list_data_quality_job_definitions(&self) -> Result<Value, HostingError> {
        let all: Vec<Value> = self
            .all(Kind::DataQualityJobDefinition)?
            .iter()
            .map(|d| {
                json!({"MonitoringJobDefinitionName": d["JobDefinitionName"],
                       "MonitoringJobDefinitionArn": d["JobDefinitionArn"],
                       "CreationTime": d["CreationTime"],
                       "EndpointName": d.pointer("/DataQualityJobInput/EndpointInput/EndpointName")})
            })
            .collect();
        Ok(json!({ "JobDefinitionSummaries": all }))
    }

    /// A schedule's configuration with a named job definition written inline.
    pub(crate) fn resolved_schedule_config(&self, config: &Value) -> Result<Value, HostingError> {
        let Some(name) = config
            .get("MonitoringJobDefinitionName")
            .and_then(Value::as_str)
        else {
            return Ok(config.clone());
        };
        let d = self.find(Kind::DataQualityJobDefinition, name)?;
        let mut resolved = config.clone();
        if let Value::Object(map) = &mut resolved {
            map.remove("MonitoringJobDefinitionName");
        }
        resolved["MonitoringJobDefinition"] = json!({
            "BaselineConfig": d.get("DataQualityBaselineConfig").cloned().unwrap_or(json!({})),
            "MonitoringInputs": [{"EndpointInput": d.pointer("/DataQualityJobInput/EndpointInput").cloned().unwrap_or(Value::Null)}],
            "MonitoringOutputConfig": d.get("DataQualityJobOutputConfig").cloned().unwrap_or(Value::Null),
            "MonitoringResources": d.get("JobResources").cloned().unwrap_or(Value::Null),
            "MonitoringAppSpecification": d.get("DataQualityAppSpecification").cloned().unwrap_or(Value::Null),
            "RoleArn": d.get("RoleArn").cloned().unwrap_or(Value::Null),
        });
        Ok(resolved)
    }
}
