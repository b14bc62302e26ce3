//! Webhook notifications (generic JSON, WeCom and DingTalk group robots).
