//! The operator's config for a plugin, as the gateway passes it (JSON text, `{}` when none).

use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    value: Value,
}

impl Config {
    /// Parses the config text. Empty text counts as `{}`.
    pub fn from_json(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let value = serde_json::from_str(text).map_err(|e| format!("config is not JSON: {e}"))?;
        Ok(Config { value })
    }

    /// The config as the plugin's own type: missing fields take the type's serde defaults.
    /// An error names what is wrong, and the gateway reports it as a `plugin_error`.
    pub fn parse<T: DeserializeOwned + Default>(&self) -> Result<T, String> {
        match &self.value {
            Value::Null => Ok(T::default()),
            v => T::deserialize(v).map_err(|e| format!("invalid plugin config: {e}")),
        }
    }

    /// The raw config value.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Opts {
        threshold: f32,
        names: Vec<String>,
    }

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(Config::from_json("").unwrap().parse::<Opts>().unwrap(), Opts::default());
        assert_eq!(Config::from_json("{}").unwrap().parse::<Opts>().unwrap(), Opts::default());
    }

    #[test]
    fn fields_parse_and_mistakes_are_named() {
        let c = Config::from_json(r#"{"threshold":0.5,"names":["a"]}"#).unwrap();
        assert_eq!(c.parse::<Opts>().unwrap().names, ["a"]);
        let bad = Config::from_json(r#"{"treshold":1}"#).unwrap().parse::<Opts>().unwrap_err();
        assert!(bad.contains("treshold"), "{bad}");
        assert!(Config::from_json("{").unwrap_err().contains("not JSON"));
    }
}
