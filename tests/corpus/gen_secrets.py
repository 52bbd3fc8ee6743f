"""Secrets corpus: every rule in realistic MCP payloads, and near-misses that are not secrets."""
import base64
import binascii
import json

from gen_common import RNG, b64url, call, fill, rand, result_text, uuid

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def github(prefix):
    body = rand("A", 30)
    n = binascii.crc32(body.encode())
    digits = ""
    for _ in range(6):
        digits = BASE62[n % 62] + digits
        n //= 62
    return prefix + body + digits


def pem(kind):
    body = base64.b64encode(bytes(RNG.randrange(256) for _ in range(600))).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n"


def openssh():
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW" + fill("{b:300}")
    lines = "\n".join(body[i:i + 70] for i in range(0, len(body), 70))
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{lines}\n-----END OPENSSH PRIVATE KEY-----\n"


def pgp():
    body = fill("{b:320}")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{lines}\n=Ab3x\n-----END PGP PRIVATE KEY BLOCK-----\n"


def putty():
    pub = "\n".join(fill("{b:64}") for _ in range(3))
    priv = "\n".join(fill("{b:64}") for _ in range(4))
    return (f"PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: deploy@bastion\nPublic-Lines: 3\n{pub}\n"
            f"Private-Lines: 4\n{priv}\nPrivate-MAC: {fill('{h:64}')}\n")


def jwt():
    header = b64url(json.dumps({"alg": RNG.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    claims = {"sub": uuid(), "iss": "https://auth.internal.example", "exp": 1798000000 + RNG.randrange(10**6),
              "scope": "orders:write"}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{fill('{u:43}')}"


def service_account_json():
    return json.dumps({
        "type": "service_account", "project_id": "acme-analytics-prod", "private_key_id": fill("{h:40}"),
        "private_key": pem("PRIVATE KEY"), "client_email": "etl@acme-analytics-prod.iam.gserviceaccount.com",
        "client_id": fill("{d:21}"), "token_uri": "https://oauth2.googleapis.com/token"}, indent=2)


# rule, environment name, value template (or function), mode:
#   t: a token that stands alone (any wrapper); c: needs its name beside it (text wrappers);
#   r: a whole line or document that carries its own context (text wrappers, verbatim).
RULES = [
    ("aws-access-key-id", "AWS_ACCESS_KEY_ID", "AKIA{B:16}", "t"),
    ("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", "{b:40}", "c"),
    ("aws-session-token", "AWS_SESSION_TOKEN", "FwoGZXIvYXdzE{b:180}", "c"),
    ("aws-mws-key", "MWS_AUTH_TOKEN", lambda: "amzn.mws." + uuid(), "t"),
    ("gcp-api-key", "GOOGLE_API_KEY", "AIza{u:35}", "t"),
    ("gcp-oauth-client-secret", "GOOGLE_CLIENT_SECRET", "GOCSPX-{u:28}", "t"),
    ("google-oauth-access-token", "GOOGLE_ACCESS_TOKEN", "ya29.a0{u:150}", "t"),
    ("google-oauth-refresh-token", "GOOGLE_REFRESH_TOKEN", "1//0{u:60}", "t"),
    ("azure-storage-account-key", "", "DefaultEndpointsProtocol=https;AccountName=prodlogs01;AccountKey={b:86}==;EndpointSuffix=core.windows.net", "r"),
    ("azure-sas-token", "", "https://prodlogs01.blob.core.windows.net/exports/q3.csv?sv=2024-11-04&ss=b&srt=o&sp=r&se=2026-12-31T00:00:00Z&spr=https&sig={b:43}%3D", "r"),
    ("azure-ad-client-secret", "AZURE_CLIENT_SECRET", "{A:3}{d:1}Q~{A:34}", "t"),
    ("azure-devops-pat", "AZURE_DEVOPS_PAT", "{z:52}", "c"),
    ("azure-cosmos-key", "", "AccountEndpoint=https://orders-db.documents.azure.com:443/;AccountKey={b:86}==;", "r"),
    ("azure-search-admin-key", "", '"api-key": "{A:42}AzSeB{A:5}"', "r"),
    ("alibaba-access-key-id", "ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI{A:20}", "t"),
    ("tencent-secret-id", "TENCENTCLOUD_SECRET_ID", "AKID{A:32}", "t"),
    ("ibm-cloud-api-key", "IBM_CLOUD_API_KEY", "{A:44}", "c"),
    ("yandex-api-key", "YC_API_KEY", "AQVN{A:36}", "t"),
    ("digitalocean-pat", "DIGITALOCEAN_TOKEN", "dop_v1_{h:64}", "t"),
    ("digitalocean-oauth-token", "DO_OAUTH_TOKEN", "doo_v1_{h:64}", "t"),
    ("digitalocean-refresh-token", "DO_REFRESH_TOKEN", "dor_v1_{h:64}", "t"),
    ("heroku-api-key", "HEROKU_API_KEY", "HRKU-AA{A:58}", "t"),
    ("flyio-token", "FLY_API_TOKEN", "fo1_{A:43}", "t"),
    ("cloudflare-origin-ca-key", "CF_ORIGIN_CA_KEY", "v1.0-{h:24}-{h:146}", "t"),
    ("cloudflare-api-token", "CLOUDFLARE_API_TOKEN", "{A:40}", "c"),
    ("hashicorp-vault-token", "VAULT_TOKEN", "hvs.CAESI{A:90}", "t"),
    ("hashicorp-vault-batch-token", "VAULT_BATCH_TOKEN", "hvb.AAAAAQ{A:140}", "t"),
    ("terraform-cloud-token", "TFE_TOKEN", "{A:14}.atlasv1.{A:65}", "t"),
    ("pulumi-access-token", "PULUMI_ACCESS_TOKEN", "pul-{h:40}", "t"),
    ("doppler-token", "DOPPLER_TOKEN", "dp.pt.{A:43}", "t"),
    ("databricks-token", "DATABRICKS_TOKEN", "dapi{h:32}", "t"),
    ("planetscale-token", "PLANETSCALE_SERVICE_TOKEN", "pscale_tkn_{A:43}", "t"),
    ("supabase-service-key", "SUPABASE_ACCESS_TOKEN", "sbp_{h:40}", "t"),
    ("render-api-key", "RENDER_API_KEY", "rnd_{A:32}", "t"),
    ("kubeconfig-client-key", "", "users:\n- name: admin\n  user:\n    client-certificate-data: {b:120}\n    client-key-data: {b:220}=", "r"),
    ("docker-config-auth", "", lambda: json.dumps({"auths": {"registry.acme.io": {"auth": base64.b64encode(("deploy:" + rand("A", 24)).encode()).decode()}}}), "r"),
    ("github-pat", "GITHUB_TOKEN", lambda: github("ghp_"), "t"),
    ("github-oauth-token", "GH_OAUTH_TOKEN", lambda: github("gho_"), "t"),
    ("github-user-to-server-token", "GH_USER_TOKEN", lambda: github("ghu_"), "t"),
    ("github-server-to-server-token", "GH_INSTALLATION_TOKEN", lambda: github("ghs_"), "t"),
    ("github-refresh-token", "GH_REFRESH_TOKEN", lambda: github("ghr_"), "t"),
    ("github-fine-grained-pat", "GITHUB_PAT", "github_pat_11{A:20}_{A:59}", "t"),
    ("gitlab-pat", "GITLAB_TOKEN", "glpat-{A:20}", "t"),
    ("gitlab-pipeline-trigger-token", "CI_TRIGGER_TOKEN", "glptt-{h:40}", "t"),
    ("gitlab-runner-registration-token", "RUNNER_REGISTRATION_TOKEN", "GR1348941{A:20}", "t"),
    ("gitlab-runner-token", "RUNNER_TOKEN", "glrt-{A:20}", "t"),
    ("gitlab-deploy-token", "DEPLOY_TOKEN", "gldt-{A:20}", "t"),
    ("gitlab-oauth-app-secret", "GITLAB_APP_SECRET", "gloas-{A:64}", "t"),
    ("gitlab-feed-token", "FEED_TOKEN", "glft-{A:20}", "t"),
    ("gitlab-cicd-job-token", "CI_JOB_TOKEN", "glcbt-{A:24}", "t"),
    ("gitlab-agent-token", "AGENT_TOKEN", "glagent-{A:50}", "t"),
    ("gitlab-incoming-mail-token", "INCOMING_MAIL_TOKEN", "glimt-{A:25}", "t"),
    ("bitbucket-app-password", "BITBUCKET_APP_PASSWORD", "ATBB{A:32}", "t"),
    ("atlassian-api-token", "JIRA_API_TOKEN", "ATATT3xFfGF0{A:180}", "t"),
    ("circleci-pat", "CIRCLECI_TOKEN", "CCIPAT_{A:22}_{h:40}", "t"),
    ("buildkite-token", "BUILDKITE_API_TOKEN", "bkua_{h:40}", "t"),
    ("sonarqube-token", "SONAR_TOKEN", "sqp_{h:40}", "t"),
    ("sourcegraph-token", "SRC_ACCESS_TOKEN", "sgp_{h:16}_{h:40}", "t"),
    ("octopus-deploy-api-key", "OCTOPUS_API_KEY", "API-{U:26}", "t"),
    ("harness-pat", "HARNESS_TOKEN", "pat.{A:22}.{h:24}.{A:20}", "t"),
    ("jfrog-api-key", "ARTIFACTORY_API_KEY", "AKCp{A:69}", "t"),
    ("jfrog-reference-token", "JFROG_ACCESS_TOKEN", "cmVmd{A:59}", "t"),
    ("slack-bot-token", "SLACK_BOT_TOKEN", "xoxb-{d:12}-{d:13}-{A:24}", "t"),
    ("slack-user-token", "SLACK_USER_TOKEN", "xoxp-{d:12}-{d:12}-{d:13}-{h:32}", "t"),
    ("slack-app-token", "SLACK_APP_TOKEN", "xapp-1-A{U:10}-{d:13}-{h:64}", "t"),
    ("slack-config-token", "SLACK_CONFIG_TOKEN", "xoxe.xoxp-1-{U:160}", "t"),
    ("slack-legacy-token", "SLACK_LEGACY_TOKEN", "xoxs-{d:10}-{d:10}-{d:10}-{h:64}", "t"),
    ("slack-webhook-url", "SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T{U:10}/B{U:10}/{A:24}", "t"),
    ("discord-bot-token", "DISCORD_BOT_TOKEN", "MT{A:24}.{A:6}.{A:38}", "c"),
    ("discord-webhook-url", "DISCORD_WEBHOOK", "https://discord.com/api/webhooks/1{d:18}/{u:68}", "t"),
    ("telegram-bot-token", "TELEGRAM_BOT_TOKEN", "{d:10}:AA{u:33}", "t"),
    ("teams-webhook-url", "TEAMS_WEBHOOK_URL", lambda: f"https://contoso.webhook.office.com/webhookb2/{uuid()}@{uuid()}/IncomingWebhook/{rand('h', 32)}/{uuid()}", "t"),
    ("mattermost-token", "MATTERMOST_ACCESS_TOKEN", "{a:26}", "c"),
    ("twitter-bearer-token", "TWITTER_BEARER_TOKEN", "AAAAAAAAAAAAAAAAAAAAA{A:80}", "t"),
    ("facebook-access-token", "FB_ACCESS_TOKEN", "EAACEdEose0cBA{A:40}", "t"),
    ("linear-api-key", "LINEAR_API_KEY", "lin_api_{A:40}", "t"),
    ("notion-token", "NOTION_TOKEN", "ntn_{d:11}{A:35}", "t"),
    ("figma-pat", "FIGMA_TOKEN", "figd_{A:40}", "t"),
    ("airtable-pat", "AIRTABLE_TOKEN", "pat{A:14}.{h:64}", "t"),
    ("asana-pat", "ASANA_ACCESS_TOKEN", "2/{d:16}/{d:16}:{h:32}", "c"),
    ("postman-api-key", "POSTMAN_API_KEY", "PMAK-{h:24}-{h:34}", "t"),
    ("dropbox-token", "DROPBOX_ACCESS_TOKEN", "sl.B{A:137}", "t"),
    ("contentful-pat", "CONTENTFUL_MANAGEMENT_TOKEN", "CFPAT-{A:43}", "t"),
    ("typeform-pat", "TYPEFORM_TOKEN", "tfp_{A:59}", "t"),
    ("clickup-api-token", "CLICKUP_API_TOKEN", "pk_{d:8}_{U:32}", "t"),
    ("hubspot-private-app-token", "HUBSPOT_ACCESS_TOKEN", lambda: "pat-na1-" + uuid(), "t"),
    ("readme-api-key", "README_API_KEY", "rdme_{a:70}", "t"),
    ("frameio-token", "FRAMEIO_TOKEN", "fio-u-{A:64}", "t"),
    ("onepassword-service-account-token", "OP_SERVICE_ACCOUNT_TOKEN", "ops_eyJ{A:300}", "t"),
    ("onepassword-secret-key", "OP_SECRET_KEY", "A3-{U:6}-{U:11}-{U:5}-{U:5}-{U:5}", "t"),
    ("stripe-secret-key", "STRIPE_SECRET_KEY", "sk_live_51{A:60}", "t"),
    ("stripe-test-secret-key", "STRIPE_TEST_KEY", "sk_test_51{A:60}", "t"),
    ("stripe-restricted-key", "STRIPE_RESTRICTED_KEY", "rk_live_51{A:60}", "t"),
    ("stripe-webhook-secret", "STRIPE_WEBHOOK_SECRET", "whsec_{A:32}", "t"),
    ("square-access-token", "SQUARE_ACCESS_TOKEN", "EAAA{A:60}", "t"),
    ("square-oauth-secret", "SQUARE_OAUTH_SECRET", "sq0csp-{A:43}", "t"),
    ("braintree-access-token", "BRAINTREE_ACCESS_TOKEN", "access_token$production${a:16}${h:32}", "t"),
    ("shopify-access-token", "SHOPIFY_ACCESS_TOKEN", "shpat_{h:32}", "t"),
    ("shopify-shared-secret", "SHOPIFY_API_SECRET", "shpss_{h:32}", "t"),
    ("razorpay-key", "RAZORPAY_KEY_SECRET", "rzp_live_{A:14}", "t"),
    ("flutterwave-secret-key", "FLW_SECRET_KEY", "FLWSECK_TEST-{f:32}-X", "t"),
    ("shippo-api-token", "SHIPPO_API_TOKEN", "shippo_live_{h:40}", "t"),
    ("easypost-api-key", "EASYPOST_API_KEY", "EZAK{A:54}", "t"),
    ("duffel-api-token", "DUFFEL_ACCESS_TOKEN", "duffel_live_{A:43}", "t"),
    ("plaid-access-token", "PLAID_ACCESS_TOKEN", lambda: "access-production-" + uuid(), "t"),
    ("coinbase-api-secret", "COINBASE_API_SECRET", "{A:64}", "c"),
    ("sendgrid-api-key", "SENDGRID_API_KEY", "SG.{A:22}.{A:43}", "t"),
    ("mailgun-api-key", "MAILGUN_API_KEY", "key-{h:32}", "c"),
    ("mailchimp-api-key", "MAILCHIMP_API_KEY", "{h:32}-us14", "t"),
    ("brevo-api-key", "BREVO_API_KEY", "xkeysib-{h:64}-{A:16}", "t"),
    ("postmark-server-token", "POSTMARK_SERVER_TOKEN", lambda: uuid(), "c"),
    ("twilio-api-key", "TWILIO_API_KEY", "SK{h:32}", "t"),
    ("twilio-auth-token", "TWILIO_AUTH_TOKEN", "{h:32}", "c"),
    ("mapbox-secret-token", "MAPBOX_SECRET_TOKEN", "sk.eyJ1{A:40}.{A:22}", "t"),
    ("algolia-admin-key", "ALGOLIA_ADMIN_API_KEY", "{h:32}", "c"),
    ("okta-api-token", "OKTA_API_TOKEN", "00{A:40}", "c"),
    ("zendesk-api-token", "ZENDESK_API_TOKEN", "{A:40}", "c"),
    ("intercom-access-token", "INTERCOM_ACCESS_TOKEN", "{A:60}", "c"),
    ("datadog-api-key", "DD_API_KEY", "{h:32}", "c"),
    ("datadog-app-key", "DD_APP_KEY", "{h:40}", "c"),
    ("newrelic-user-api-key", "NEW_RELIC_API_KEY", "NRAK-{U:27}", "t"),
    ("newrelic-insert-key", "NEW_RELIC_INSERT_KEY", "NRII-{A:32}", "t"),
    ("newrelic-browser-key", "NEW_RELIC_BROWSER_KEY", "NRJS-{h:19}", "t"),
    ("sentry-org-token", "SENTRY_AUTH_TOKEN", "sntrys_eyJ{A:120}", "t"),
    ("sentry-user-token", "SENTRY_USER_TOKEN", "sntryu_{h:64}", "t"),
    ("grafana-service-account-token", "GRAFANA_TOKEN", "glsa_{A:32}_{h:8}", "t"),
    ("grafana-cloud-token", "GRAFANA_CLOUD_TOKEN", "glc_{A:60}", "t"),
    ("dynatrace-api-token", "DT_API_TOKEN", "dt0c01.{U:24}.{U:64}", "t"),
    ("honeycomb-api-key", "HONEYCOMB_API_KEY", "{A:22}", "c"),
    ("openai-api-key", "OPENAI_API_KEY", "sk-proj-{A:60}T3BlbkFJ{A:60}", "t"),
    ("anthropic-api-key", "ANTHROPIC_API_KEY", "sk-ant-api03-{u:93}AA", "t"),
    ("anthropic-admin-key", "ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-{u:93}AA", "t"),
    ("huggingface-token", "HF_TOKEN", "hf_{L:34}", "t"),
    ("huggingface-org-token", "HF_ORG_TOKEN", "api_org_{L:34}", "t"),
    ("groq-api-key", "GROQ_API_KEY", "gsk_{A:52}", "t"),
    ("xai-api-key", "XAI_API_KEY", "xai-{A:80}", "t"),
    ("perplexity-api-key", "PERPLEXITY_API_KEY", "pplx-{A:48}", "t"),
    ("replicate-api-token", "REPLICATE_API_TOKEN", "r8_{A:37}", "t"),
    ("openrouter-api-key", "OPENROUTER_API_KEY", "sk-or-v1-{h:64}", "t"),
    ("langsmith-api-key", "LANGSMITH_API_KEY", "lsv2_pt_{h:32}_{h:10}", "t"),
    ("langfuse-secret-key", "LANGFUSE_SECRET_KEY", lambda: "sk-lf-" + uuid(), "t"),
    ("nvidia-api-key", "NVIDIA_API_KEY", "nvapi-{A:64}", "t"),
    ("pinecone-api-key", "PINECONE_API_KEY", "pcsk_{A:5}_{A:64}", "t"),
    ("tavily-api-key", "TAVILY_API_KEY", "tvly-{A:32}", "t"),
    ("firecrawl-api-key", "FIRECRAWL_API_KEY", "fc-{h:32}", "t"),
    ("cerebras-api-key", "CEREBRAS_API_KEY", "csk-{a:48}", "t"),
    ("cohere-api-key", "COHERE_API_KEY", "{A:40}", "c"),
    ("mistral-api-key", "MISTRAL_API_KEY", "{A:32}", "c"),
    ("deepseek-api-key", "DEEPSEEK_API_KEY", "sk-{h:32}", "c"),
    ("elevenlabs-api-key", "ELEVENLABS_API_KEY", "sk_{h:48}", "c"),
    ("wandb-api-key", "WANDB_API_KEY", "{h:40}", "c"),
    ("assemblyai-api-key", "ASSEMBLYAI_API_KEY", "{h:32}", "c"),
    ("deepgram-api-key", "DEEPGRAM_API_KEY", "{h:40}", "c"),
    ("npm-token", "NPM_TOKEN", "npm_{A:36}", "t"),
    ("pypi-token", "PYPI_TOKEN", "pypi-AgEIcHlwaS5vcmc{u:120}", "t"),
    ("rubygems-api-key", "GEM_HOST_API_KEY", "rubygems_{h:48}", "t"),
    ("nuget-api-key", "NUGET_API_KEY", "oy2{a:43}", "t"),
    ("dockerhub-pat", "DOCKERHUB_TOKEN", "dckr_pat_{A:27}", "t"),
    ("crates-io-token", "CARGO_REGISTRY_TOKEN", "cio{A:32}", "t"),
    ("clojars-token", "CLOJARS_TOKEN", "CLOJARS_{a:60}", "t"),
    ("prefect-api-key", "PREFECT_API_KEY", "pnu_{A:36}", "t"),
    ("private-key", "", lambda: pem(RNG.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"])), "r"),
    ("openssh-private-key", "", openssh, "r"),
    ("pgp-private-key", "", pgp, "r"),
    ("putty-private-key", "", putty, "r"),
    ("age-secret-key", "AGE_KEY", "AGE-SECRET-KEY-1{g:58}", "t"),
    ("jwt", "SESSION_JWT", jwt, "t"),
    ("database-url", "DATABASE_URL", lambda: RNG.choice([
        "postgresql://billing_app:{A:20}@db.prod.internal:5432/billing",
        "mysql://report:{A:16}@mysql-replica.internal:3306/analytics",
        "mongodb+srv://svc-orders:{A:24}@cluster0.ab1cd.mongodb.net/orders?retryWrites=true",
        "rediss://default:{A:32}@cache.internal:6380/0"]).replace("{A:20}", rand("A", 20)).replace("{A:16}", rand("A", 16)).replace("{A:24}", rand("A", 24)).replace("{A:32}", rand("A", 32)), "t"),
    ("url-basic-auth", "GIT_REMOTE", "https://deploy:{A:24}@git.internal.acme.io/platform/infra.git", "t"),
    ("jdbc-password", "JDBC_URL", "jdbc:postgresql://db.internal:5432/app?user=app&password={A:18}", "t"),
    ("odbc-connection-string", "", "Server=tcp:sql-prod.database.windows.net,1433;Database=orders;User ID=app;Password={A:16};Encrypt=true;", "r"),
    ("htpasswd-hash", "", "admin:$apr1${a:8}${A:22}", "r"),
]


def value(template):
    return template() if callable(template) else fill(template)


def text_wrappers(name, v, mode):
    line = v if mode == "r" else f"{name}={v}"
    yaml_line = v if mode == "r" else f"{name.lower()}: \"{v}\""
    return [
        ("request", "write_file", call("write_file", {"path": "/workspace/deploy/.env.production",
                                                       "content": f"# billing service\nAPP_ENV=production\n{line}\nLOG_LEVEL=info\n"})),
        ("response", "read_file", result_text(f"Contents of config/staging.yaml:\n\nservice: billing\n{yaml_line}\nreplicas: 3\n")),
        ("request", "run_command", call("run_command", {"command": f"export {line}" if mode != "r" else f"cat > /tmp/creds <<'EOF'\n{v}\nEOF"})),
    ]


def token_wrappers(name, v):
    return [
        ("request", "http_request", call("http_request", {"method": "GET", "url": "https://api.acme.io/v2/invoices?limit=20",
                                                         "headers": {"Authorization": f"Bearer {v}", "Accept": "application/json"}})),
        ("response", "search_logs", result_text(f"2026-11-30T10:22:04Z WARN auth rejected credential {v} for tenant 4417 (401)\n2026-11-30T10:22:05Z INFO retrying")),
        ("request", "set_secret", call("set_secret", {"scope": "ci", "key": name or "CREDENTIAL", "value": v})),
    ]


def positives():
    cases = []
    for rule, name, template, mode in RULES:
        wrappers = text_wrappers(name, value(template), mode)
        if mode == "t":
            wrappers = text_wrappers(name, value(template), mode)[:1] + token_wrappers(name, value(template))[:2]
            wrappers += token_wrappers(name, value(template))[2:]
        for i, (hook, tool, payload) in enumerate(wrappers[:3]):
            # Fresh values per case, so no two cases share a secret.
            if i > 0 and mode != "t":
                payload = text_wrappers(name, value(template), mode)[i][2]
            cases.append({"id": f"{rule}-{i + 1}", "hook": hook, "method": "tools/call", "tool": tool,
                          "payload": payload, "expect": [f"secrets.{rule}"]})
    # The service-account key: a JSON document in a result, and the same as structured arguments.
    cases.append({"id": "gcp-service-account-1", "hook": "response", "method": "tools/call", "tool": "read_file",
                  "payload": result_text(service_account_json()), "expect": ["secrets.gcp-service-account", "secrets.private-key"]})
    cases.append({"id": "gcp-service-account-2", "hook": "request", "method": "tools/call", "tool": "create_job",
                  "payload": call("create_job", {"name": "nightly-export", "credentials": json.loads(service_account_json())}),
                  "expect": ["secrets.gcp-service-account", "secrets.private-key"]})
    cases.append({"id": "gcp-service-account-3", "hook": "request", "method": "tools/call", "tool": "write_file",
                  "payload": call("write_file", {"path": "/workspace/sa.json", "content": service_account_json()}),
                  "expect": ["secrets.gcp-service-account", "secrets.private-key"]})
    return cases


GENERIC = [
    ("DB_PASSWORD", "Xk9#mQ2vLp8w"), ("REDIS_PASSWORD", "hT7$wqP3zN1b"), ("SECRET_KEY", "f8Kq2Lz9Vw3Xp7Rt1Ys5Mn0B"),
    ("API_KEY", "Zx81Qp0LmWv2Rt7KsYc4Hd9N"), ("client_secret", "qP8_2mVxL0zTn4RbK7sWc9dY"), ("ADMIN_PASSWORD", "Summer2026!Prod"),
    ("SMTP_PASSWORD", "mX4!rT8@qL2z"), ("JWT_SECRET", "Wm3pQx9Lz2Rt8Vn5Kc7Ys1Bd"), ("WEBHOOK_SECRET", "T9vXq2LmP8zR4wNc6sKb0Y"),
    ("accessToken", "mQ7xL2pZ9vR4tN8cK1sW6yBd"), ("INTERNAL_API_KEY", "kR2x-9LmQ-p7Vz-4TnW-8cYs"), ("LDAP_BIND_PASSWORD", "b1nd#Acme2026"),
]


def generic_positives():
    cases = []
    for i, (name, v) in enumerate(GENERIC):
        structured = call("configure_service", {"service": "billing", "settings": {name: v, "region": "eu-west-1"}})
        text = call("write_file", {"path": "/workspace/.env", "content": f"APP_ENV=prod\n{name}={v}\nDEBUG=false\n"})
        result = result_text(f"Current settings:\n  region: eu-west-1\n  {name.lower()}: {v}\n  replicas: 2")
        for j, (hook, tool, p) in enumerate([("request", "configure_service", structured), ("request", "write_file", text),
                                              ("response", "get_settings", result)]):
            cases.append({"id": f"generic-{i + 1}-{j + 1}", "hook": hook, "method": "tools/call", "tool": tool,
                          "payload": p, "expect": ["secrets.generic-credential"]})
    return cases


def sha():
    return rand("h", 40)


def near_misses():
    n = []
    b = lambda i, tool, p, hook="request": n.append({"id": f"benign-{len(n) + 1}-{i}", "hook": hook, "method": "tools/call",
                                                       "tool": tool, "payload": p, "expect": []})
    # Documentation placeholders and redacted values.
    for text in [
        "aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Set STRIPE_SECRET_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx in your environment",
        "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "OPENAI_API_KEY=<your-openai-key>",
        "ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}",
        "SLACK_BOT_TOKEN={{ secrets.SLACK_BOT_TOKEN }}",
        "password: ********",
        "DATABASE_URL=postgres://user:password@localhost:5432/mydb",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
        "DATABASE_URL=postgresql://localhost/dev",
        "REDIS_URL=redis://cache.internal:6379/0",
        "mongodb://mongo-0.mongo:27017,mongo-1.mongo:27017/?replicaSet=rs0",
        "git clone https://github.com/acme/infra.git",
        "Clone with https://oauth2:<token>@gitlab.com/acme/app.git",
        "NPM_TOKEN=npm_REDACTED_BY_CI_PLEASE_ROTATE_NOW_OK",
        "The key file starts with -----BEGIN OPENSSH PRIVATE KEY----- and must be mode 0600.",
        "Paste your PEM (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----) into the form.",
        "API_KEY=changeme",
        "SECRET_KEY=your-secret-key-here",
        "Authorization: Bearer <token>",
        "client_secret: REPLACE_ME",
    ]:
        b("doc", "write_file", call("write_file", {"path": "/workspace/README.md", "content": text}))
    # Public material that looks like key material.
    pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rand("A", 43) + " ops@bastion"
    cert = pem("CERTIFICATE").replace("-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----")
    for text in [pubkey, cert, pem("PUBLIC KEY"), "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + fill("{b:64}\n{b:64}") + "\n-----END PGP PUBLIC KEY BLOCK-----",
                 "Stripe publishable key: pk_live_51" + rand("A", 60), "SENTRY_DSN=https://" + rand("h", 32) + "@o4505.ingest.sentry.io/4505123",
                 "TWILIO_ACCOUNT_SID=AC" + rand("h", 32), "Slack channel C024BE91L, user U012AB3CD"]:
        b("public", "read_file", result_text(text), "response")
    # Identifiers, digests and encodings.
    for i in range(12):
        b("uuid", "get_order", result_text(json.dumps({"order_id": uuid(), "request_id": uuid(), "status": "shipped"})), "response")
    for i in range(10):
        b("sha", "git_log", result_text(f"commit {sha()}\nAuthor: Dana <dana@acme.io>\n\n    Fix rounding in invoice totals\n\ncommit {sha()}\nMerge: {sha()[:7]} {sha()[:7]}"), "response")
    for i in range(6):
        b("digest", "docker_inspect", result_text(json.dumps({"Id": "sha256:" + rand("h", 64), "RepoDigests": ["acme/api@sha256:" + rand("h", 64)]})), "response")
    for i in range(6):
        b("integrity", "read_file", result_text(json.dumps({"lodash": {"version": "4.17.21", "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",
                                                                     "integrity": "sha512-" + rand("b", 86) + "=="}})), "response")
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk" + rand("b", 200)
    for i in range(5):
        b("image", "render_chart", {"content": [{"type": "image", "mimeType": "image/png", "data": png}]}, "response")
        b("image", "write_file", call("write_file", {"path": "/workspace/logo.html", "content": f'<img src="data:image/png;base64,{png}">'}))
    for i in range(6):
        b("pagination", "list_issues", {"content": [{"type": "text", "text": "42 issues"}], "structuredContent": {"next_page_token": b64url(json.dumps({"page": i + 2, "after": rand("A", 12)}).encode()), "total": 42}}, "response")
    for i in range(6):
        b("tokens", "chat", {"usage": {"prompt_tokens": RNG.randrange(100, 4000), "completion_tokens": RNG.randrange(10, 900)}, "token_type": "Bearer", "max_tokens": 4096, "model": "gpt-4.1"}, "response")
    for i in range(6):
        b("etag", "http_request", result_text(f'HTTP/1.1 200 OK\nETag: "{rand("h", 32)}"\nX-Request-Id: {uuid()}\nContent-Type: application/json'), "response")
    for i in range(5):
        b("ulid", "create_ticket", call("create_ticket", {"idempotency_key": uuid(), "title": "Printer on floor 3 offline", "trace": rand("U", 26)}))
    # Config that names credentials without containing them.
    for text in [
        "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: billing-db\n        key: password",
        "api_key: /run/secrets/api_key", "password_file: /etc/app/db.pass", "token: vault:secret/data/ci#token",
        "AWS_SECRET_ACCESS_KEY_FILE=/var/run/secrets/aws", "private_key: ./certs/server.key", "GITHUB_TOKEN=$GITHUB_TOKEN",
        "secret_name: projects/acme/secrets/db-password/versions/latest", "password_policy: min_length=12", "api_key_header: X-API-Key",
        "password: correct horse battery staple", "token_url: https://oauth2.googleapis.com/token", "credentials: default",
        "access_key_rotation_days: 90", "secret: false", "passwordless: true", "auth_token_ttl: 3600s",
    ]:
        b("reference", "write_file", call("write_file", {"path": "/workspace/config.yaml", "content": text}))
    # Prefix collisions: real identifiers that start like tokens.
    for text in [
        "npm_config_cache=/home/node/.npm npm_lifecycle_event=build", "from huggingface_hub import hf_hub_download",
        "The task-runner uses sk-learn pipelines", "Use AKIA keys only for break-glass access", "run: gh auth login --with-token < token.txt",
        "glpat- tokens expire after 365 days", "sk_live_ keys are restricted to the payments team", "xoxb- tokens belong to the bot user",
        "key-value store migration finished in 12s", "The API-GATEWAY-ROUTES table lists every route", "pat.json was updated",
        "Model eyJhbGciOi is not a JWT header on its own", "dapi is the Databricks token prefix", "Use shpat_ tokens for the admin API",
        "call 1-800-555-0199 for support", "ticket SK-2231 blocked by SK-2230", "cio is the chief information officer",
    ]:
        b("prefix", "search_docs", result_text(text), "response")
    # GitHub-shaped tokens whose checksum fails (test fixtures, typos).
    for i in range(10):
        tok = github(RNG.choice(["ghp_", "gho_", "ghs_"]))
        bad = tok[:-1] + ("A" if tok[-1] != "A" else "B")
        b("checksum", "read_file", result_text(f"fixtures/tokens.txt:\n{bad}"), "response")
    # Ordinary tool traffic.
    for text in [
        "Deployed billing-api v2.14.3 to eu-west-1 in 3m12s", "SELECT id, email FROM users WHERE created_at > now() - interval '7 days'",
        "The invoice INV-2026-00412 was paid on 2026-11-28", "Build #8812 passed: 1,204 tests, 0 failures", "kubectl get pods -n billing",
        "Weather in Lisbon: 17°C, light rain", "Temperature sensor T-1008 reports 21.5°C", "git push origin feature/retry-backoff",
        "Base64 of 'hello world' is aGVsbG8gd29ybGQ=", "Cache hit ratio 97.2% over the last hour",
    ]:
        b("ordinary", "run_command", call("run_command", {"command": text}))
    return n


def cases():
    return positives() + generic_positives() + near_misses()
