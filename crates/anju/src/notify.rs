//! The site file's `[notify]` section: webhooks that receive alerts (generic
//! JSON, WeCom and DingTalk group robots), per estate, grid and alert code.
//!
//! ```toml
//! [notify]
//! cooldown_s = 600                # no repeat per target, grid and code within this
//! [[notify.webhook]]
//! name = "fcy-grid-1"
//! kind = "wecom"                  # json | wecom | dingtalk
//! url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY"
//! grids = ["FCY:G1"]              # optional filters: estates, grids, codes
//! codes = ["elderly_no_activity", "sublet_suspected"]
//! # secret = "SEC…"               # dingtalk signing secret
//! ```

use anju_api::notify::{NotifierConfig, WebhookKind, WebhookTarget};
use anju_core::AlertCode;
use anyhow::{bail, Context};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifySection {
    #[serde(default)]
    cooldown_s: Option<u64>,
    #[serde(default)]
    webhook: Vec<WebhookSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSection {
    name: String,
    kind: String,
    url: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    estates: Vec<String>,
    #[serde(default)]
    grids: Vec<String>,
    #[serde(default)]
    codes: Vec<String>,
}

/// Parses `[notify]`; `None` when the site has no webhooks.
///
/// # Errors
/// An unknown key, kind, code or a malformed grid, with the webhook's name.
pub fn config(v: Option<&toml::Value>) -> anyhow::Result<Option<NotifierConfig>> {
    let Some(v) = v else { return Ok(None) };
    let sec: NotifySection = v.clone().try_into().context("[notify] in the site file")?;
    if sec.webhook.is_empty() {
        return Ok(None);
    }
    let mut cfg = NotifierConfig::default();
    if let Some(c) = sec.cooldown_s {
        cfg.cooldown = Duration::from_secs(c);
    }
    for w in sec.webhook {
        let kind = match w.kind.as_str() {
            "json" => WebhookKind::Json,
            "wecom" => WebhookKind::WeCom,
            "dingtalk" => WebhookKind::DingTalk {
                secret: w.secret.clone(),
            },
            other => bail!(
                "webhook {:?}: kind {other:?} is not json, wecom or dingtalk",
                w.name
            ),
        };
        if !w.url.starts_with("http://") && !w.url.starts_with("https://") {
            bail!("webhook {:?}: url must be http:// or https://", w.name);
        }
        let mut grids = Vec::new();
        for g in &w.grids {
            let Some((e, g)) = g.split_once(':') else {
                bail!("webhook {:?}: grid {g:?} must be ESTATE:GRID", w.name);
            };
            grids.push((e.to_owned(), g.to_owned()));
        }
        let mut codes = Vec::new();
        for c in &w.codes {
            codes.push(
                AlertCode::parse(c)
                    .with_context(|| format!("webhook {:?}: unknown alert code {c:?}", w.name))?,
            );
        }
        cfg.targets.push(WebhookTarget {
            name: w.name,
            url: w.url,
            kind,
            estates: w.estates,
            grids,
            codes,
        });
    }
    Ok(Some(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let v: toml::Value = toml::from_str(
            r#"
cooldown_s = 60
[[webhook]]
name = "g1"
kind = "dingtalk"
secret = "SEC1"
url = "http://127.0.0.1:9/robot"
grids = ["FCY:G1"]
codes = ["elderly_no_activity"]
"#,
        )
        .unwrap();
        let cfg = config(Some(&v)).unwrap().unwrap();
        assert_eq!(cfg.cooldown, Duration::from_secs(60));
        assert_eq!(
            cfg.targets[0].grids,
            vec![("FCY".to_owned(), "G1".to_owned())]
        );
        assert_eq!(cfg.targets[0].codes, vec![AlertCode::ElderlyNoActivity]);
        let bad: toml::Value =
            toml::from_str("[[webhook]]\nname = \"x\"\nkind = \"fax\"\nurl = \"http://a\"\n")
                .unwrap();
        assert!(config(Some(&bad)).unwrap_err().to_string().contains("fax"));
        assert!(config(None).unwrap().is_none());
    }
}
