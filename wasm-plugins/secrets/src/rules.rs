//! The provider-specific rules: one line per credential format.
//!
//! A rule runs its regex only on text that contains one of its keywords (ASCII
//! case-insensitive), so a payload pays for the handful of regexes whose prefix or context
//! word it actually contains. Capture group 1 is the secret; the rest of the match is
//! context. Formats come from the providers' public documentation of their token shapes.

use crate::checks::Check;
use forge_plugin_sdk::{LazyRegex, Severity};
use std::sync::LazyLock;

pub struct Rule {
    /// The part after `secrets.`.
    pub id: &'static str,
    /// What the secret is, for the finding's message.
    pub what: &'static str,
    pub keywords: &'static [&'static str],
    pub regex: LazyRegex,
    pub confidence: f32,
    pub severity: Severity,
    pub check: Check,
}

impl Rule {
    fn new(id: &'static str, what: &'static str, keywords: &'static [&'static str], pattern: &'static str) -> Rule {
        Rule {
            id,
            what,
            keywords,
            regex: LazyRegex::new(pattern),
            confidence: 0.95,
            severity: Severity::High,
            check: Check::Random,
        }
    }

    fn confidence(mut self, confidence: f32) -> Rule {
        self.confidence = confidence;
        self
    }

    fn severity(mut self, severity: Severity) -> Rule {
        self.severity = severity;
        self
    }

    fn check(mut self, check: Check) -> Rule {
        self.check = check;
        self
    }
}

/// A token with ASCII word boundaries on both sides.
macro_rules! tok {
    ($p:literal) => {
        concat!(r"(?-u:\b)(", $p, r")(?-u:\b)")
    };
}

/// A value that only means something next to its context word: `context`, then up to 30
/// characters of key/quote/assignment punctuation, then the value as group 1.
macro_rules! ctx {
    ($context:literal, $p:literal) => {
        concat!(r"(?i:", $context, r")[\w.-]{0,20}[\x22'`]?\s*(?:[:=]|=>|:=)\s*[\x22'`]?(", $p, r")(?-u:\b)")
    };
}

use Check::*;
use Severity::Critical;

pub static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // Cloud providers.
        Rule::new("aws-access-key-id", "AWS access key id", &["akia", "asia", "abia", "acca"], tok!("(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}")),
        Rule::new("aws-secret-access-key", "AWS secret access key", &["aws", "secret_access_key", "secretaccesskey"],
            r#"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\w.-]{0,10}["'`]?\s*(?:[:=]|=>)\s*["'`]?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#).severity(Critical),
        Rule::new("aws-session-token", "AWS session token", &["aws_session_token", "sessiontoken", "session_token"],
            r#"(?i:aws_?session_?token|sessiontoken)["'`]?\s*(?:[:=]|=>)\s*["'`]?([A-Za-z0-9/+=]{100,})"#),
        Rule::new("aws-mws-key", "Amazon MWS auth token", &["amzn.mws"], tok!(r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")).check(Format),
        Rule::new("gcp-api-key", "Google API key", &["aiza"], r"(?-u:\b)(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)"),
        Rule::new("gcp-service-account", "Google Cloud service-account key", &["service_account"],
            r#"("type"\s*:\s*"service_account")"#).check(ServiceAccount).severity(Critical),
        Rule::new("gcp-oauth-client-secret", "Google OAuth client secret", &["gocspx-"], r"(?-u:\b)(GOCSPX-[A-Za-z0-9_-]{28})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("google-oauth-access-token", "Google OAuth access token", &["ya29."], r"(?-u:\b)(ya29\.[0-9A-Za-z_-]{30,})"),
        Rule::new("google-oauth-refresh-token", "Google OAuth refresh token", &["1//0"], r"(?:^|[^0-9A-Za-z/])(1//0[0-9A-Za-z_-]{40,})"),
        Rule::new("azure-cosmos-key", "Azure Cosmos DB key", &["accountendpoint"], r"(?i:AccountEndpoint=https://[^;\s]+;AccountKey)=([A-Za-z0-9+/]{86}==)"),
        Rule::new("azure-storage-account-key", "Azure storage account key", &["accountkey="], r"(?i:AccountKey)=([A-Za-z0-9+/]{86}==)").severity(Critical),
        Rule::new("azure-sas-token", "Azure shared access signature", &["sig="], r"(?:\?|&)sv=20\d\d-\d\d-\d\d&[^\s\x22']*?sig=([A-Za-z0-9%+/]{40,}(?:%3D|=){0,2})"),
        Rule::new("azure-ad-client-secret", "Azure AD client secret", &["q~"], r"(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)"),
        Rule::new("azure-devops-pat", "Azure DevOps personal access token", &["devops", "ado_pat", "azure_pat"],
            ctx!(r"(?:azure_?devops|ado|azure)_?(?:pat|token)", "[a-z2-7]{52}")),
        Rule::new("azure-search-admin-key", "Azure AI Search admin key", &["api-key"], r"(?-u:\b)(?i:api-key)[\x22']?\s*:\s*[\x22']?([A-Za-z0-9]{42}AzSe[A-D][A-Za-z0-9]{5})(?-u:\b)"),
        Rule::new("alibaba-access-key-id", "Alibaba Cloud AccessKey id", &["ltai"], tok!("LTAI[A-Za-z0-9]{12,20}")),
        Rule::new("tencent-secret-id", "Tencent Cloud SecretId", &["akid"], tok!("AKID[A-Za-z0-9]{32}")),
        Rule::new("ibm-cloud-api-key", "IBM Cloud API key", &["ibm"], ctx!(r"ibm_?(?:cloud_?)?api_?key", "[A-Za-z0-9_-]{44}")),
        Rule::new("yandex-api-key", "Yandex Cloud API key", &["aqvn"], tok!("AQVN[A-Za-z0-9_-]{35,38}")),
        Rule::new("digitalocean-pat", "DigitalOcean personal access token", &["dop_v1_"], tok!("dop_v1_[a-f0-9]{64}")),
        Rule::new("digitalocean-oauth-token", "DigitalOcean OAuth token", &["doo_v1_"], tok!("doo_v1_[a-f0-9]{64}")),
        Rule::new("digitalocean-refresh-token", "DigitalOcean refresh token", &["dor_v1_"], tok!("dor_v1_[a-f0-9]{64}")),
        Rule::new("heroku-api-key", "Heroku API key", &["hrku-"], tok!("HRKU-AA[0-9A-Za-z_-]{58}")),
        Rule::new("flyio-token", "Fly.io access token", &["fo1_"], tok!("fo1_[A-Za-z0-9_-]{43}")),
        Rule::new("cloudflare-origin-ca-key", "Cloudflare Origin CA key", &["v1.0-"], tok!("v1\\.0-[a-f0-9]{24}-[a-f0-9]{146}")),
        Rule::new("cloudflare-api-token", "Cloudflare API token", &["cloudflare", "cf_api"], ctx!(r"(?:cloudflare|cf)_?api_?(?:token|key)", "[A-Za-z0-9_-]{40}")),
        Rule::new("hashicorp-vault-token", "HashiCorp Vault service token", &["hvs."], tok!(r"hvs\.[A-Za-z0-9_-]{90,}")),
        Rule::new("hashicorp-vault-batch-token", "HashiCorp Vault batch token", &["hvb."], tok!(r"hvb\.[A-Za-z0-9_-]{130,}")),
        Rule::new("terraform-cloud-token", "Terraform Cloud API token", &["atlasv1"], tok!(r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_-]{60,70}")),
        Rule::new("pulumi-access-token", "Pulumi access token", &["pul-"], tok!("pul-[a-f0-9]{40}")),
        Rule::new("doppler-token", "Doppler token", &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."], tok!(r"dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,44}")),
        Rule::new("databricks-token", "Databricks access token", &["dapi"], tok!("dapi[a-f0-9]{32}(?:-\\d)?")),
        Rule::new("planetscale-token", "PlanetScale token", &["pscale_"], tok!(r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64}")),
        Rule::new("supabase-service-key", "Supabase access token", &["sbp_"], tok!("sbp_[a-f0-9]{40}")),
        Rule::new("render-api-key", "Render API key", &["rnd_"], tok!("rnd_[A-Za-z0-9]{32}")),
        Rule::new("kubeconfig-client-key", "Kubernetes client key in a kubeconfig", &["client-key-data"], r"client-key-data:\s*([A-Za-z0-9+/=]{100,})").severity(Critical),
        Rule::new("docker-config-auth", "registry credentials in a Docker config", &["auths"], r#""auths"\s*:\s*\{[^}]*?"auth"\s*:\s*"([A-Za-z0-9+/]{16,}={0,2})""#),
        // Source hosts and CI.
        Rule::new("github-pat", "GitHub personal access token", &["ghp_"], tok!("ghp_[A-Za-z0-9]{36}")).check(GithubChecksum).confidence(0.99),
        Rule::new("github-oauth-token", "GitHub OAuth access token", &["gho_"], tok!("gho_[A-Za-z0-9]{36}")).check(GithubChecksum).confidence(0.99),
        Rule::new("github-user-to-server-token", "GitHub App user-to-server token", &["ghu_"], tok!("ghu_[A-Za-z0-9]{36}")).check(GithubChecksum).confidence(0.99),
        Rule::new("github-server-to-server-token", "GitHub App installation token", &["ghs_"], tok!("ghs_[A-Za-z0-9]{36}")).check(GithubChecksum).confidence(0.99),
        Rule::new("github-refresh-token", "GitHub refresh token", &["ghr_"], tok!("ghr_[A-Za-z0-9]{36}")).check(GithubChecksum).confidence(0.99),
        Rule::new("github-fine-grained-pat", "GitHub fine-grained personal access token", &["github_pat_"], tok!("github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}")),
        Rule::new("gitlab-pat", "GitLab personal access token", &["glpat-"], r"(?-u:\b)(glpat-[A-Za-z0-9_-]{20,})(?:[^A-Za-z0-9_.-]|$)"),
        Rule::new("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", &["glptt-"], tok!("glptt-[a-f0-9]{40}")),
        Rule::new("gitlab-runner-registration-token", "GitLab runner registration token", &["gr1348941"], r"(?-u:\b)(GR1348941[A-Za-z0-9_-]{20})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("gitlab-runner-token", "GitLab runner authentication token", &["glrt-"], r"(?-u:\b)(glrt-[A-Za-z0-9_-]{20,})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("gitlab-deploy-token", "GitLab deploy token", &["gldt-"], r"(?-u:\b)(gldt-[A-Za-z0-9_-]{20,})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("gitlab-oauth-app-secret", "GitLab OAuth application secret", &["gloas-"], tok!("gloas-[A-Za-z0-9_-]{64}")),
        Rule::new("gitlab-feed-token", "GitLab feed token", &["glft-"], r"(?-u:\b)(glft-[A-Za-z0-9_-]{20,})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("gitlab-cicd-job-token", "GitLab CI/CD job token", &["glcbt-"], r"(?-u:\b)(glcbt-[A-Za-z0-9_-]{20,})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("gitlab-agent-token", "GitLab agent token", &["glagent-"], tok!("glagent-[A-Za-z0-9_-]{50}")),
        Rule::new("gitlab-incoming-mail-token", "GitLab incoming mail token", &["glimt-"], tok!("glimt-[A-Za-z0-9_-]{25}")),
        Rule::new("bitbucket-app-password", "Bitbucket app password", &["atbb"], tok!("ATBB[A-Za-z0-9]{32}")),
        Rule::new("atlassian-api-token", "Atlassian API token", &["atatt3"], r"(?-u:\b)(ATATT3[A-Za-z0-9_=-]{180,})"),
        Rule::new("circleci-pat", "CircleCI personal API token", &["ccipat_"], tok!("CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}")),
        Rule::new("buildkite-token", "Buildkite API token", &["bkua_"], tok!("bkua_[a-f0-9]{40}")),
        Rule::new("sonarqube-token", "SonarQube token", &["sqp_", "squ_", "sqa_"], tok!("sq[pua]_[a-f0-9]{40}")),
        Rule::new("sourcegraph-token", "Sourcegraph access token", &["sgp_"], tok!("sgp_(?:[a-f0-9]{16}|local)_[a-f0-9]{40}")),
        Rule::new("octopus-deploy-api-key", "Octopus Deploy API key", &["api-"], tok!("API-[A-Z0-9]{26}")),
        Rule::new("harness-pat", "Harness access token", &["pat."], tok!(r"pat\.[A-Za-z0-9_-]{22}\.[a-f0-9]{24}\.[A-Za-z0-9]{20}")),
        Rule::new("jfrog-api-key", "JFrog Artifactory API key", &["akcp"], tok!("AKCp[A-Za-z0-9]{69}")),
        Rule::new("jfrog-reference-token", "JFrog reference token", &["cmvmd"], tok!("cmVmd[A-Za-z0-9]{59}")),
        // Chat and collaboration.
        Rule::new("slack-bot-token", "Slack bot token", &["xoxb-"], tok!("xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}")),
        Rule::new("slack-user-token", "Slack user token", &["xoxp-"], tok!("xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[a-f0-9]{32}")),
        Rule::new("slack-app-token", "Slack app-level token", &["xapp-"], tok!("xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,13}-[a-f0-9]{64}")),
        Rule::new("slack-config-token", "Slack configuration token", &["xoxe."], tok!("xoxe\\.xox[bp]-[0-9]-[A-Z0-9]{150,170}")),
        Rule::new("slack-legacy-token", "Slack legacy token", &["xoxo-", "xoxs-", "xoxa-", "xoxr-"], tok!("xox[osar]-[0-9]{6,}-[0-9]{6,}-[0-9]{6,}-[a-f0-9]{16,}")),
        Rule::new("slack-webhook-url", "Slack incoming webhook", &["hooks.slack.com"], r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{8,12}/[AB][A-Z0-9]{8,12}/[A-Za-z0-9]{24,})"),
        Rule::new("discord-bot-token", "Discord bot token", &["discord", "bot"], r"(?-u:\b)([MN][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38})(?-u:\b)").confidence(0.85),
        Rule::new("discord-webhook-url", "Discord webhook", &["/api/webhooks/"], r"(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,68})"),
        Rule::new("telegram-bot-token", "Telegram bot token", &[":aa"], r"(?:^|[^0-9])([0-9]{8,10}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("teams-webhook-url", "Microsoft Teams incoming webhook", &["webhook.office.com"], r"(https://[a-z0-9-]+\.webhook\.office\.com/webhookb2/[a-f0-9-]{36}@[a-f0-9-]{36}/IncomingWebhook/[a-f0-9]{32}/[a-f0-9-]{36})").check(Format),
        Rule::new("mattermost-token", "Mattermost access token", &["mattermost"], ctx!(r"mattermost_?(?:access_?)?token", "[a-z0-9]{26}")),
        Rule::new("twitter-bearer-token", "X/Twitter bearer token", &["aaaaaaaaaaaaaaaaaaaaa"], r"(?-u:\b)(AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{30,120})").check(Format),
        Rule::new("facebook-access-token", "Facebook access token", &["eaacedeose0cba"], tok!("EAACEdEose0cBA[0-9A-Za-z]{20,}")),
        Rule::new("linear-api-key", "Linear API key", &["lin_api_"], tok!("lin_api_[A-Za-z0-9]{40}")),
        Rule::new("notion-token", "Notion integration token", &["ntn_", "secret_"], r"(?-u:\b)(ntn_[0-9]{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43})(?-u:\b)"),
        Rule::new("figma-pat", "Figma personal access token", &["figd_"], tok!("figd_[A-Za-z0-9_-]{40,}")),
        Rule::new("airtable-pat", "Airtable personal access token", &["pat"], tok!(r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}")),
        Rule::new("asana-pat", "Asana personal access token", &["asana"], ctx!("asana_?(?:access_?)?(?:token|pat)", r"[0-9]/[0-9]{16}:[a-f0-9]{32}|2/[0-9]{16}/[0-9]{16}:[a-f0-9]{32}")),
        Rule::new("postman-api-key", "Postman API key", &["pmak-"], tok!("PMAK-[a-f0-9]{24}-[a-f0-9]{34}")),
        Rule::new("dropbox-token", "Dropbox access token", &["sl."], tok!(r"sl\.[A-Za-z0-9_-]{130,150}")),
        Rule::new("contentful-pat", "Contentful personal access token", &["cfpat-"], tok!("CFPAT-[A-Za-z0-9_-]{43}")),
        Rule::new("typeform-pat", "Typeform personal access token", &["tfp_"], tok!(r"tfp_[A-Za-z0-9_.=-]{59}")),
        Rule::new("clickup-api-token", "ClickUp API token", &["pk_"], tok!("pk_[0-9]{6,10}_[A-Z0-9]{32}")),
        Rule::new("hubspot-private-app-token", "HubSpot private app token", &["pat-na1-", "pat-eu1-"], tok!("pat-(?:na|eu)1-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}")).check(Format),
        Rule::new("readme-api-key", "ReadMe API key", &["rdme_"], tok!("rdme_[a-z0-9]{70}")),
        Rule::new("frameio-token", "Frame.io API token", &["fio-u-"], tok!("fio-u-[A-Za-z0-9_=-]{64}")),
        Rule::new("onepassword-service-account-token", "1Password service account token", &["ops_eyj"], r"(?-u:\b)(ops_eyJ[A-Za-z0-9+/=_-]{250,})"),
        Rule::new("onepassword-secret-key", "1Password secret key", &["a3-"], tok!("A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}")),
        // Payments and commerce.
        Rule::new("stripe-secret-key", "Stripe secret key", &["sk_live_"], tok!("sk_live_[0-9A-Za-z]{24,99}")).severity(Critical),
        Rule::new("stripe-test-secret-key", "Stripe test-mode secret key", &["sk_test_"], tok!("sk_test_[0-9A-Za-z]{24,99}")).confidence(0.7).severity(Severity::Medium),
        Rule::new("stripe-restricted-key", "Stripe restricted key", &["rk_live_", "rk_test_"], tok!("rk_(?:live|test)_[0-9A-Za-z]{24,99}")),
        Rule::new("stripe-webhook-secret", "Stripe webhook signing secret", &["whsec_"], tok!("whsec_[A-Za-z0-9]{32,}")),
        Rule::new("square-access-token", "Square access token", &["sq0atp-", "eaaa"], r"(?-u:\b)(sq0atp-[0-9A-Za-z_-]{22}|EAAA[A-Za-z0-9_-]{60})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("square-oauth-secret", "Square OAuth secret", &["sq0csp-"], r"(?-u:\b)(sq0csp-[0-9A-Za-z_-]{43})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("braintree-access-token", "Braintree/PayPal access token", &["access_token$"], r"(access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32})"),
        Rule::new("shopify-access-token", "Shopify access token", &["shpat_", "shpca_", "shppa_"], tok!("shp(?:at|ca|pa)_[a-fA-F0-9]{32}")),
        Rule::new("shopify-shared-secret", "Shopify app shared secret", &["shpss_"], tok!("shpss_[a-fA-F0-9]{32}")),
        Rule::new("razorpay-key", "Razorpay key", &["rzp_live_", "rzp_test_"], tok!("rzp_(?:live|test)_[A-Za-z0-9]{14}")),
        Rule::new("flutterwave-secret-key", "Flutterwave secret key", &["flwseck"], tok!("FLWSECK(?:_TEST)?-[a-h0-9]{32}-X")),
        Rule::new("shippo-api-token", "Shippo API token", &["shippo_"], tok!("shippo_(?:live|test)_[a-f0-9]{40}")),
        Rule::new("easypost-api-key", "EasyPost API key", &["ezak"], tok!("EZ[AT]K[A-Za-z0-9]{54}")),
        Rule::new("duffel-api-token", "Duffel API token", &["duffel_"], tok!("duffel_(?:test|live)_[A-Za-z0-9_-]{43}")),
        Rule::new("plaid-access-token", "Plaid access token", &["access-production-", "access-development-", "access-sandbox-"],
            tok!("access-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")).check(Format),
        Rule::new("coinbase-api-secret", "Coinbase API secret", &["coinbase"], ctx!(r"coinbase_?(?:api_?)?secret", "[A-Za-z0-9+/]{64,88}={0,2}")),
        // Email, messaging and SaaS.
        Rule::new("sendgrid-api-key", "SendGrid API key", &["sg."], r"(?-u:\b)(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("mailgun-api-key", "Mailgun API key", &["key-"], r"(?i:mailgun)[^\n]{0,40}?(?-u:\b)(key-[0-9a-f]{32})(?-u:\b)"),
        Rule::new("mailchimp-api-key", "Mailchimp API key", &["-us"], tok!("[0-9a-f]{32}-us[0-9]{1,2}")),
        Rule::new("brevo-api-key", "Brevo (Sendinblue) API key", &["xkeysib-"], tok!("xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}")),
        Rule::new("postmark-server-token", "Postmark server token", &["postmark"], ctx!(r"postmark_?(?:server_?|api_?)?token", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")).check(Format),
        Rule::new("twilio-api-key", "Twilio API key", &["sk"], tok!("SK[0-9a-f]{32}")),
        Rule::new("twilio-auth-token", "Twilio auth token", &["twilio"], ctx!(r"twilio_?auth_?token", "[0-9a-f]{32}")),
        Rule::new("mapbox-secret-token", "Mapbox secret token", &["sk.eyj"], tok!(r"sk\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}")),
        Rule::new("algolia-admin-key", "Algolia admin API key", &["algolia"], ctx!(r"algolia_?(?:admin_?)?(?:api_?)?key", "[a-f0-9]{32}")),
        Rule::new("okta-api-token", "Okta API token", &["okta"], ctx!(r"okta_?(?:api_?)?token", "00[A-Za-z0-9_-]{40}")),
        Rule::new("zendesk-api-token", "Zendesk API token", &["zendesk"], ctx!(r"zendesk_?(?:api_?)?token", "[A-Za-z0-9]{40}")),
        Rule::new("intercom-access-token", "Intercom access token", &["intercom"], ctx!(r"intercom_?(?:access_?)?token", "[A-Za-z0-9=_-]{59,60}")),
        // Observability.
        Rule::new("datadog-api-key", "Datadog API key", &["dd_api_key", "datadog"], ctx!(r"(?:dd|datadog)_?api_?key", "[a-f0-9]{32}")),
        Rule::new("datadog-app-key", "Datadog application key", &["dd_app", "datadog"], ctx!(r"(?:dd|datadog)_?app(?:lication)?_?key", "[a-f0-9]{40}")),
        Rule::new("newrelic-user-api-key", "New Relic user API key", &["nrak-"], tok!("NRAK-[A-Z0-9]{27}")),
        Rule::new("newrelic-insert-key", "New Relic insert key", &["nrii-"], tok!("NRII-[A-Za-z0-9_-]{32}")),
        Rule::new("newrelic-browser-key", "New Relic browser API key", &["nrjs-"], tok!("NRJS-[a-f0-9]{19}")).confidence(0.8),
        Rule::new("sentry-org-token", "Sentry organization auth token", &["sntrys_"], r"(?-u:\b)(sntrys_eyJ[A-Za-z0-9+/=_-]{60,})"),
        Rule::new("sentry-user-token", "Sentry user auth token", &["sntryu_"], tok!("sntryu_[a-f0-9]{64}")),
        Rule::new("grafana-service-account-token", "Grafana service account token", &["glsa_"], tok!("glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}")),
        Rule::new("grafana-cloud-token", "Grafana Cloud access policy token", &["glc_"], r"(?-u:\b)(glc_[A-Za-z0-9+/]{32,}={0,2})"),
        Rule::new("dynatrace-api-token", "Dynatrace API token", &["dt0c01."], tok!(r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}")),
        Rule::new("honeycomb-api-key", "Honeycomb API key", &["honeycomb"], ctx!(r"honeycomb_?(?:api_?)?key", "[A-Za-z0-9]{22}|[a-f0-9]{32}")),
        // AI providers.
        Rule::new("openai-api-key", "OpenAI API key", &["t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"],
            r"(?-u:\b)(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{80,})(?:[^A-Za-z0-9_-]|$)").severity(Critical),
        Rule::new("anthropic-api-key", "Anthropic API key", &["sk-ant-api"], r"(?-u:\b)(sk-ant-api0\d-[A-Za-z0-9_-]{80,100}AA)(?:[^A-Za-z0-9_-]|$)").severity(Critical),
        Rule::new("anthropic-admin-key", "Anthropic admin key", &["sk-ant-admin"], r"(?-u:\b)(sk-ant-admin0\d-[A-Za-z0-9_-]{80,100}AA)(?:[^A-Za-z0-9_-]|$)").severity(Critical),
        Rule::new("huggingface-token", "Hugging Face access token", &["hf_"], tok!("hf_[A-Za-z]{34}")),
        Rule::new("huggingface-org-token", "Hugging Face organization token", &["api_org_"], tok!("api_org_[A-Za-z]{34}")),
        Rule::new("groq-api-key", "Groq API key", &["gsk_"], tok!("gsk_[A-Za-z0-9]{52}")),
        Rule::new("xai-api-key", "xAI API key", &["xai-"], tok!("xai-[A-Za-z0-9]{80}")),
        Rule::new("perplexity-api-key", "Perplexity API key", &["pplx-"], tok!("pplx-[A-Za-z0-9]{48}")),
        Rule::new("replicate-api-token", "Replicate API token", &["r8_"], tok!("r8_[A-Za-z0-9]{37}")),
        Rule::new("openrouter-api-key", "OpenRouter API key", &["sk-or-v1-"], tok!("sk-or-v1-[a-f0-9]{64}")),
        Rule::new("langsmith-api-key", "LangSmith API key", &["lsv2_"], tok!("lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}")),
        Rule::new("langfuse-secret-key", "Langfuse secret key", &["sk-lf-"], tok!("sk-lf-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}")).check(Format),
        Rule::new("nvidia-api-key", "NVIDIA API key", &["nvapi-"], tok!("nvapi-[A-Za-z0-9_-]{64}")),
        Rule::new("pinecone-api-key", "Pinecone API key", &["pcsk_"], tok!("pcsk_[A-Za-z0-9]{5,6}_[A-Za-z0-9]{60,}")),
        Rule::new("tavily-api-key", "Tavily API key", &["tvly-"], tok!("tvly-(?:dev-)?[A-Za-z0-9]{32}")),
        Rule::new("firecrawl-api-key", "Firecrawl API key", &["fc-"], tok!("fc-[a-f0-9]{32}")),
        Rule::new("cerebras-api-key", "Cerebras API key", &["csk-"], tok!("csk-[a-z0-9]{48}")),
        Rule::new("cohere-api-key", "Cohere API key", &["cohere", "co_api"], ctx!(r"(?:cohere|co)_?api_?key", "[A-Za-z0-9]{40}")),
        Rule::new("mistral-api-key", "Mistral API key", &["mistral"], ctx!(r"mistral_?api_?key", "[A-Za-z0-9]{32}")),
        Rule::new("deepseek-api-key", "DeepSeek API key", &["deepseek"], ctx!(r"deepseek_?api_?key", "sk-[a-f0-9]{32}")),
        Rule::new("elevenlabs-api-key", "ElevenLabs API key", &["elevenlabs", "xi-api-key", "xi_api_key"], ctx!(r"(?:elevenlabs_?api_?key|xi[-_]api[-_]key)", "(?:sk_)?[a-f0-9]{32,48}")),
        Rule::new("wandb-api-key", "Weights & Biases API key", &["wandb"], ctx!("wandb_?api_?key", "[a-f0-9]{40}")),
        Rule::new("assemblyai-api-key", "AssemblyAI API key", &["assemblyai"], ctx!("assemblyai_?api_?key", "[a-f0-9]{32}")),
        Rule::new("deepgram-api-key", "Deepgram API key", &["deepgram"], ctx!("deepgram_?api_?key", "[a-f0-9]{40}")),
        // Package registries.
        Rule::new("npm-token", "npm access token", &["npm_"], tok!("npm_[A-Za-z0-9]{36}")),
        Rule::new("pypi-token", "PyPI API token", &["pypi-ag"], r"(?-u:\b)(pypi-Ag(?:EIcHlwaS5vcmc|ENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,})"),
        Rule::new("rubygems-api-key", "RubyGems API key", &["rubygems_"], tok!("rubygems_[a-f0-9]{48}")),
        Rule::new("nuget-api-key", "NuGet API key", &["oy2"], tok!("oy2[a-z0-9]{43}")),
        Rule::new("dockerhub-pat", "Docker Hub personal access token", &["dckr_pat_"], r"(?-u:\b)(dckr_pat_[A-Za-z0-9_-]{27})(?:[^A-Za-z0-9_-]|$)"),
        Rule::new("crates-io-token", "crates.io API token", &["cio"], tok!("cio[A-Za-z0-9]{32}")),
        Rule::new("clojars-token", "Clojars deploy token", &["clojars_"], tok!("CLOJARS_[a-z0-9]{60}")),
        Rule::new("prefect-api-key", "Prefect API key", &["pnu_"], tok!("pnu_[A-Za-z0-9]{36}")),
        // Keys, tokens and connection strings that are not tied to one provider.
        Rule::new("private-key", "PEM private key", &["private key-----"],
            r"(-----BEGIN (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----[\s\\n]*[A-Za-z0-9+/=\s\\n]{64,}?[\s\\n]*-----END (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----)").severity(Critical).check(Format),
        Rule::new("openssh-private-key", "OpenSSH private key", &["openssh private key"],
            r"(-----BEGIN OPENSSH PRIVATE KEY-----[\s\\n]*b3BlbnNzaC1rZXktdjE[A-Za-z0-9+/=\s\\n]{40,}?[\s\\n]*-----END OPENSSH PRIVATE KEY-----)").severity(Critical).check(Format),
        Rule::new("pgp-private-key", "PGP private key block", &["pgp private key"],
            r"(-----BEGIN PGP PRIVATE KEY BLOCK-----[\s\\n]*(?:[\w-]+: [^\n\\]*[\s\\n]*)*[A-Za-z0-9+/=\s\\n]{64,}?[\s\\n]*-----END PGP PRIVATE KEY BLOCK-----)").severity(Critical).check(Format),
        Rule::new("putty-private-key", "PuTTY private key", &["putty-user-key-file-"], r"(PuTTY-User-Key-File-[23]: [a-z0-9-]+[\s\\n]+Encryption: [a-z0-9-]+[\s\\n]+Comment: [^\n\\]*[\s\\n]+Public-Lines: [0-9]+[\s\\n]+[A-Za-z0-9+/=\s\\n]{60,}?Private-Lines: [0-9]+[\s\\n]+[A-Za-z0-9+/=\s\\n]{60,}?)").severity(Critical).check(Format),
        Rule::new("age-secret-key", "age secret key", &["age-secret-key-1"], tok!("AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}")).severity(Critical),
        Rule::new("jwt", "JSON Web Token", &["eyj"], r"(?-u:\b)(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,})(?:[^A-Za-z0-9_.-]|$)").check(Jwt).confidence(0.8),
        Rule::new("database-url", "database URL with a password", &["://"],
            r"(?i)(?-u:\b)((?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb|couchdb|neo4j(?:\+s)?|oracle|db2)://[^\s:/@\x22'`]+:([^\s@/\x22'`]+)@[^\s\x22'`]+)").check(UrlPassword),
        Rule::new("url-basic-auth", "URL with an embedded password", &["://"],
            r"(?i)(?-u:\b)((?:https?|ftps?|smtps?|ldaps?|git\+https|ssh)://[^\s:/@\x22'`]+:([^\s@/\x22'`]+)@[A-Za-z0-9.-]+[^\s\x22'`]*)").check(UrlPassword).confidence(0.8),
        Rule::new("jdbc-password", "JDBC URL with a password", &["jdbc:"], r"(?i)(jdbc:[a-z0-9]+:[^\s\x22'`]*?[;?&]password=([^\s;&\x22'`]+))").check(UrlPassword),
        Rule::new("odbc-connection-string", "connection string with a password", &["password=", "pwd="],
            r"(?i)((?:server|data source|host)=[^;\x22']+;(?:[^;\x22']+;)*?\s*(?:password|pwd)=([^;\x22'\s]+))").check(UrlPassword),
        Rule::new("htpasswd-hash", "htpasswd credential", &["$apr1$", "$2y$"], r"(?m)^[A-Za-z0-9._-]+:((?:\$apr1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}|\$2y\$[0-9]{2}\$[./0-9A-Za-z]{53}))").confidence(0.7).severity(Severity::Medium),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn there_are_at_least_a_hundred_valid_rules_with_unique_ids() {
        assert!(RULES.len() >= 100, "{} rules", RULES.len());
        let mut ids = HashSet::new();
        for rule in RULES.iter() {
            rule.regex.check().unwrap_or_else(|e| panic!("{}: {e}", rule.id));
            assert!(ids.insert(rule.id), "duplicate {}", rule.id);
            assert!(!rule.keywords.is_empty(), "{} has no keyword", rule.id);
            assert!(
                rule.keywords.iter().all(|k| *k == k.to_ascii_lowercase()),
                "{} keywords must be lowercase",
                rule.id
            );
            assert!(rule.regex.captures_len() >= 2, "{} has no capture group", rule.id);
        }
    }
}
