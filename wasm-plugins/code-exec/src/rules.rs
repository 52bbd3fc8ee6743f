//! Dangerous patterns in shell, Python and JavaScript code. Each rule is a regex over the
//! code-bearing argument behind a keyword prefilter, so code that cannot match compiles
//! nothing, with an optional check of the surrounding text where the pattern
//! alone would also match ordinary work (`ssh -i ~/.ssh/id_ed25519` uses a key, `cat
//! ~/.ssh/id_ed25519` reads it).

use forge_plugin_sdk::{Rule, Severity};

use Severity::{Critical, High, Medium};

pub static RULES: [Rule; 33] = [
    // Destroying data.
    Rule::new(
        "code-exec.destructive-fs",
        Critical,
        "recursive delete of the root, home or a system directory",
        &["rm "],
        r#"\brm\s+(?:-{1,2}[A-Za-z-]+\s+)*-{1,2}(?:[A-Za-z]*[rR][A-Za-z]*|recursive)\s+(?:-{1,2}[A-Za-z-]+\s+)*["']?(?:/|/\*|~/?|~/\*|\$HOME/?\*?|\$\{HOME\}/?|\*|\.\./?\*?|/(?:etc|usr|var|boot|bin|sbin|lib|lib64|home|root|opt|srv|dev|sys|proc)/?\*?)["']?(?:\s|;|&|\||\)|$)"#,
    ),
    Rule::new(
        "code-exec.destructive-fs",
        Critical,
        "rm without root protection",
        &["--no-preserve-root"],
        r"--no-preserve-root",
    ),
    Rule::new(
        "code-exec.destructive-fs",
        Critical,
        "overwriting a disk device",
        &["mkfs", "of=/dev/", "wipefs", "shred", "/dev/sd", "/dev/nvme", "/dev/hd", "/dev/xvd"],
        r"\b(?:mkfs(?:\.\w+)?\s+(?:-\S+\s+)*/dev/|dd\s+[^|;&\n]*\bof=/dev/(?:sd|nvme|hd|xvd|vd|disk|mmcblk)|wipefs\s+-a|shred\s+[^|;&\n]*/dev/)|>\s*/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z])\b",
    ),
    Rule::new(
        "code-exec.destructive-fs",
        Critical,
        "recursive permission or ownership change of the root",
        &["chmod", "chown", "find /"],
        r"\b(?:chmod|chown)\s+-R\s+\S+\s+/(?:\s|$|;)|\bfind\s+/\s+[^|;&\n]*(?:-delete|-exec\s+rm)",
    ),
    Rule::new(
        "code-exec.destructive-fs",
        Critical,
        "recursive delete of the root or home directory from code",
        &["rmtree", "rmsync", ".rm(", "rmdir"],
        r#"\b(?:shutil\.rmtree\(\s*(?:["'](?:/|~|/home|/etc|/usr|/var)/?["']|os\.path\.expanduser\(\s*["']~/?["']\))|(?:\bfs(?:\.promises)?|require\(\s*["'](?:node:)?fs["']\s*\))\.(?:rmSync|rm|rmdirSync|rmdir)\(\s*["'](?:/|~|/home|/etc|/usr)/?["']\s*,\s*\{[^}]*recursive\s*:\s*true)"#,
    ),
    Rule::new(
        "code-exec.fork-bomb",
        Critical,
        "fork bomb",
        &[":()", "os.fork"],
        r":\(\)\s*\{\s*:\s*\|\s*:?\s*&\s*\}\s*;\s*:|while\s+True\s*:\s*\n?\s*os\.fork\(\)",
    ),
    // Running code fetched from the network.
    Rule::new(
        "code-exec.download-exec",
        Critical,
        "downloaded script piped into an interpreter",
        &["curl", "wget", "fetch"],
        r"\b(?:curl|wget|fetch)\b[^|;&\n]*\|\s*(?:sudo\s+)?(?:(?:/usr)?/bin/)?(?:ba|z|da|k|fi)?sh\b|\b(?:curl|wget)\b[^|;&\n]*\|\s*(?:sudo\s+)?(?:python[23]?|perl|ruby|node|php)\b",
    ),
    Rule::new(
        "code-exec.download-exec",
        Critical,
        "downloaded script run by process substitution",
        &["<(", "$("],
        r#"\b(?:(?:ba|z)?sh|source|\.)\s+<\(\s*(?:curl|wget)\b|\b(?:ba|z)?sh\s+-c\s+["']?\$\(\s*(?:curl|wget)\b"#,
    ),
    Rule::new(
        "code-exec.download-exec",
        Critical,
        "downloaded file made executable and run",
        &["curl", "wget"],
        r"\b(?:curl|wget)\b[^\n]*(?:&&|;)\s*chmod\s+\+x\s+\S+\s*(?:&&|;)\s*(?:sudo\s+)?\S|\b(?:curl|wget)\b[^\n;&|]*\s-[oO]\s*\S+[^\n]*(?:&&|;)\s*(?:sudo\s+)?(?:ba|z)?sh\s+\S",
    ),
    Rule::new(
        "code-exec.download-exec",
        Critical,
        "downloaded code evaluated",
        &[
            "iex",
            "invoke-expression",
            "iwr",
            "irm",
            "invoke-webrequest",
            "invoke-restmethod",
            "requests.get",
            "urlopen",
            "httpx",
            "fetch(",
        ],
        r"(?i:\b(?:iex|invoke-expression)\b[\s(]*(?:\(?\s*new-object\s+(?:system\.)?net\.webclient\)?\.downloadstring|iwr|irm|invoke-webrequest|invoke-restmethod)|\b(?:iwr|irm|invoke-webrequest|invoke-restmethod)\b[^|\n]*\|\s*iex\b)|\b(?:exec|eval)\(\s*(?:requests\.get|urlopen|urllib\.request\.urlopen|httpx\.get)\(|\beval\(\s*(?:await\s+)?\(?\s*(?:await\s+)?fetch\(",
    ),
    // Remote shells.
    Rule::new(
        "code-exec.reverse-shell",
        Critical,
        "shell redirected to a network socket",
        &["/dev/tcp", "/dev/udp"],
        r"/dev/(?:tcp|udp)/[^/\s]+/[0-9]+",
    ),
    Rule::new(
        "code-exec.reverse-shell",
        Critical,
        "netcat serving a shell",
        &["nc ", "ncat", "netcat", "mkfifo"],
        r"\b(?:nc|ncat|netcat)\b[^|;&\n]*\s(?:-[A-Za-z]*[ec]\s*\S*(?:sh|bash|cmd(?:\.exe)?)\b|--(?:sh-)?exec\b)|\b(?:nc|ncat|netcat)\s+[^|;&\n]+\|\s*(?:/bin/)?(?:ba)?sh\b|(?:/bin/)?(?:ba)?sh\s+-i\b[^|\n]*\|\s*(?:nc|ncat|netcat)\b|\bmkfifo\s+\S+[^\n]*\b(?:nc|ncat|netcat)\b",
    ),
    Rule::new(
        "code-exec.reverse-shell",
        Critical,
        "socat or scripting one-liner serving a shell",
        &["socat", "perl", "php", "ruby", "tcpclient"],
        r"(?i:\bsocat\b[^\n]*\b(?:exec|system):)|\bperl\b[^\n]*(?:use Socket|IO::Socket)|\bphp\s+-r\s+[^\n]*fsockopen|\bruby\s+-rsocket\b|(?i:System\.Net\.Sockets\.TCPClient)",
    ),
    Rule::new(
        "code-exec.reverse-shell",
        Critical,
        "socket connected to a shell from code",
        &["dup2", "pty.spawn", "spawn("],
        r#"\bos\.dup2\(\s*\w+\.fileno\(\)|\bpty\.spawn\(\s*["'](?:/bin/)?(?:ba)?sh|\bspawn\(\s*["'](?:/bin/)?(?:ba)?sh["']"#,
    )
    .checked(connects_a_socket),
    // Credentials and keys.
    Rule::new(
        "code-exec.credential-access",
        High,
        "private key read",
        &[".ssh/"],
        r"\.ssh/(?:id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?|identity)\b(?:\.pub)?",
    )
    .checked(reads_a_private_file),
    Rule::new(
        "code-exec.credential-access",
        High,
        "cloud or tool credentials read",
        &[
            ".aws/",
            "gcloud",
            ".azure/",
            ".kube/",
            ".docker/",
            ".netrc",
            ".git-credentials",
            ".pgpass",
            ".npmrc",
            ".pypirc",
            ".vault-token",
            "/etc/ssl/private",
        ],
        r"\.aws/(?:credentials|config)\b|\.config/gcloud/(?:credentials\.db|application_default_credentials\.json|access_tokens\.db|legacy_credentials)|\.azure/(?:accessTokens\.json|msal_token_cache\.\w+)|\.kube/config\b|\.docker/config\.json|\.netrc\b|\.git-credentials\b|\.pgpass\b|\.npmrc\b|\.pypirc\b|\.vault-token\b|/etc/ssl/private/",
    )
    .checked(reads_a_private_file),
    Rule::new(
        "code-exec.credential-access",
        High,
        "key directory copied",
        &[".ssh", ".gnupg", ".aws"],
        r"\.(?:ssh|gnupg|aws)/?(?:\s|$|;|&|\|)",
    )
    .checked(copies_a_directory),
    Rule::new(
        "code-exec.credential-access",
        High,
        "system password or secret store read",
        &[
            "/etc/shadow",
            "/etc/gshadow",
            "master.passwd",
            "/environ",
            "serviceaccount",
            "169.254.169.254",
            "metadata.google",
            "security ",
            "chrome",
        ],
        r"/etc/(?:shadow|gshadow|master\.passwd)\b|/proc/(?:self|[0-9]+|\*)/environ\b|/var/run/secrets/kubernetes\.io/serviceaccount|169\.254\.169\.254/(?:latest/(?:meta-data/iam|api/token)|metadata/identity|computeMetadata)|metadata\.google\.internal/computeMetadata|\bsecurity\s+(?:find-generic-password|find-internet-password|dump-keychain)\b|Google/Chrome/[^\n]*(?:Login(?:\\ | )Data|Cookies)\b",
    ),
    // Becoming root.
    Rule::new(
        "code-exec.privilege-escalation",
        High,
        "root shell through sudo or su",
        &["sudo", "su ", "pkexec", "passwd"],
        r"\bsudo\s+(?:-[A-Za-z]*[is][A-Za-z]*(?:\s|$|;|&)|su\b|(?:/bin/)?(?:ba|z)?sh\b)|\bsu\s+(?:-\s+)?root\b|\bsu\s+-\s*(?:$|;|&)|\bpkexec\b|\bpasswd\s+root\b",
    ),
    Rule::new(
        "code-exec.privilege-escalation",
        High,
        "setuid bit or capability granted",
        &["chmod", "setcap", "setuid"],
        r"\bchmod\s+(?:[ugoa]*\+[rwx]*s|[4267][0-7]{3})\s|\bsetcap\s+[^\n]*cap_setuid|\bos\.setuid\(\s*0\s*\)",
    ),
    Rule::new(
        "code-exec.privilege-escalation",
        High,
        "sudoers or privileged group changed",
        &["sudoers", "nopasswd", "usermod", "gpasswd", "adduser"],
        r"(?:>>?|\btee\s+(?:-a\s+)?)\s*/etc/sudoers|\bNOPASSWD\b|\busermod\s+-a?G\s+(?:sudo|wheel|admin|root|docker)\b|\b(?:gpasswd\s+-a|adduser)\s+\S+\s+(?:sudo|wheel|docker)\b",
    ),
    Rule::new(
        "code-exec.privilege-escalation",
        High,
        "container escape to the host",
        &["docker", "nsenter", "chroot"],
        r"\bdocker\s+run\b[^\n]*(?:--privileged|-v\s+/:/|--volume[= ]/:/|--pid[= ]host)|\bnsenter\s+[^\n]*(?:-t|--target)\s+1\b|\bchroot\s+/host\b",
    ),
    // Staying around.
    Rule::new(
        "code-exec.persistence",
        High,
        "cron job installed",
        &["crontab", "/etc/cron", "/var/spool/cron"],
        r"\|\s*crontab\s+-(?:\s|$)|\bcrontab\s+(?:-u\s+\S+\s+)?[^-\s|;&]\S*|(?:>>?|\btee\s+(?:-a\s+)?)\s*(?:/etc/crontab|/etc/cron\.(?:d|daily|hourly|weekly|monthly)/|/var/spool/cron)",
    ),
    Rule::new(
        "code-exec.persistence",
        High,
        "shell profile or login script changed",
        &["bashrc", "bash_profile", "bash_login", "profile", "zshrc", "zprofile", "zshenv", "config.fish", "rc.local"],
        r#"(?:>>?|\btee\s+(?:-a\s+)?)\s*["']?(?:(?:~|\$HOME|\$\{HOME\}|/home/[\w.-]+|/root)/\.(?:bashrc|bash_profile|bash_login|profile|zshrc|zprofile|zshenv|config/fish/config\.fish)|/etc/(?:profile|bash\.bashrc|rc\.local|profile\.d/))"#,
    ),
    Rule::new(
        "code-exec.persistence",
        High,
        "SSH key authorized for login",
        &["authorized_keys"],
        r#"(?:>>?|\btee\s+(?:-a\s+)?)\s*["']?(?:~|\$HOME|\$\{HOME\}|/home/[\w.-]+|/root)?/?\.ssh/authorized_keys"#,
    ),
    Rule::new(
        "code-exec.persistence",
        High,
        "service, agent or autostart entry installed",
        &["systemd", "launchctl", "launchagents", "autostart", "currentversion", "schtasks", "open("],
        r#"(?:>|\btee\s+(?:-a\s+)?|\bcp\s+\S+\s+)\s*["']?(?:/etc/systemd/system/|(?:~|\$HOME)/\.config/systemd/user/)\S+\.(?:service|timer)|\blaunchctl\s+(?:load|bootstrap)\b|Library/LaunchAgents/|\.config/autostart/|(?i:\breg\s+add\s+\S*\\CurrentVersion\\Run\b|\bschtasks\s+/create\b)|\bopen\(\s*["'](?:/etc/crontab|[^"']*\.bashrc|[^"']*authorized_keys)["']\s*,\s*["']a"#,
    ),
    // Covering tracks.
    Rule::new(
        "code-exec.defense-evasion",
        High,
        "shell history, logs or security controls disabled",
        &["history", "histfile", "histsize", "setenforce", "iptables", "ufw", "systemctl", "auditctl", "/var/log"],
        r"\bhistory\s+-c\b|\bunset\s+HISTFILE\b|\bHISTFILE=/dev/null|\bexport\s+HISTSIZE=0\b|\b(?:rm|shred)\s+[^\n;&|]*\.(?:bash|zsh)_history|\bsetenforce\s+0\b|\biptables\s+-F\b|\bufw\s+disable\b|\bsystemctl\s+(?:stop|disable)\s+(?:auditd|firewalld|apparmor|falco)\b|\bauditctl\s+-D\b|(?:\b(?:rm|truncate)\s+[^\n;&|]*|>\s*)/var/log/(?:auth\.log|secure|syslog|audit/)",
    ),
    // Hiding what runs.
    Rule::new(
        "code-exec.obfuscated-exec",
        Critical,
        "decoded payload executed",
        &["base64", "xxd", "printf", "rev"],
        r#"\bbase64\s+(?:-d|--decode|-D)\b[^\n]*\|\s*(?:sudo\s+)?(?:(?:/usr)?/bin/)?(?:(?:ba|z)?sh|python[23]?|perl)\b|\beval\b[^\n]*\bbase64\s+(?:-d|--decode|-D)\b|\bxxd\s+-r\s+-p\b[^\n]*\|\s*(?:ba)?sh\b|\bprintf\s+["'](?:\\x[0-9a-fA-F]{2}){8,}["'][^\n]*\|\s*(?:ba)?sh\b|\brev\s*\|\s*(?:ba)?sh\b"#,
    ),
    Rule::new(
        "code-exec.obfuscated-exec",
        Critical,
        "decoded payload executed from code",
        &["exec", "eval", "function"],
        r#"\b(?:exec|eval)\s*\(\s*(?:base64\.b64decode|b64decode|codecs\.decode|zlib\.decompress|bytes\.fromhex|marshal\.loads|__import__\(\s*["'](?:base64|zlib|codecs)|["'](?:\\x[0-9a-fA-F]{2}){8,})|\beval\s*\(\s*(?:atob|unescape|decodeURIComponent|Buffer\.from)\s*\(|\b(?:new\s+)?Function\s*\(\s*atob\s*\("#,
    ),
    Rule::new(
        "code-exec.obfuscated-exec",
        Critical,
        "encoded PowerShell command",
        &["powershell", "frombase64string"],
        r"(?i:\bpowershell(?:\.exe)?\s+[^\n]*-(?:e|ec|enc|encodedcommand)\s+[A-Za-z0-9+/=]{20,}|frombase64string[^\n]*\|\s*iex\b|\biex\b[^\n]*frombase64string)",
    ),
    // Code that runs other code.
    Rule::new(
        "code-exec.process-spawn",
        Medium,
        "process spawned from Python",
        &["os.", "subprocess", "pty.", "create_subprocess"],
        r"\bos\.(?:system|popen|spawn[lv]p?e?|exec[lv]p?e?)\s*\(|\bsubprocess\.(?:run|call|check_call|check_output|Popen|getoutput|getstatusoutput)\s*\(|\bpty\.spawn\s*\(|\basyncio\.create_subprocess_(?:exec|shell)\s*\(",
    ),
    Rule::new(
        "code-exec.process-spawn",
        Medium,
        "process spawned from JavaScript",
        &["child_process", "execsync", "execfilesync", "spawnsync", "deno.", "bun.spawn"],
        r#"\brequire\(\s*["'](?:node:)?child_process["']\s*\)|\bfrom\s+["'](?:node:)?child_process["']|\b(?:execSync|execFileSync|spawnSync)\s*\(|\bchild_process\.\w+\s*\(|\bDeno\.(?:run|Command)\b|\bBun\.spawn(?:Sync)?\s*\("#,
    ),
    Rule::new(
        "code-exec.dynamic-eval",
        Medium,
        "dynamic evaluation of code",
        &["eval", "exec", "__import__", "compile", "__builtins__", "function", "settimeout", "setinterval", "vm."],
        r#"\b(?:eval|exec)\s*\(|\b__import__\s*\(|\bcompile\s*\([^)]*["']exec["']|\bgetattr\(\s*__builtins__|\bnew\s+Function\s*\(|\bset(?:Timeout|Interval)\(\s*["'`]|\bvm\.(?:runIn\w*Context|Script|compileFunction)\b"#,
    )
    .checked(not_a_method_call),
];

/// Reverse shells in code: the shell hookup only matters next to an outgoing socket.
fn connects_a_socket(text: &str, _: std::ops::Range<usize>) -> bool {
    [
        "socket.socket(",
        ".connect((",
        "net.connect(",
        "net.Socket(",
        "net.createConnection(",
        "socket.create_connection(",
    ]
    .iter()
    .any(|s| text.contains(s))
}

/// What reads or ships a file, in shell or in code.
const READERS: [&str; 30] = [
    "cat ",
    "less ",
    "more ",
    "head ",
    "tail ",
    "base64 ",
    "xxd ",
    "od ",
    "strings ",
    "cp ",
    "mv ",
    "rsync ",
    "tar ",
    "zip ",
    "curl ",
    "wget ",
    "nc ",
    "openssl ",
    "gpg ",
    "type ",
    "get-content",
    "open(",
    "readfile",
    "read_text(",
    "read_bytes(",
    "scp ",
    "grep ",
    "awk ",
    "sed ",
    "python -c",
];

/// A credential file named in the command that is read or copied, not used: `ssh -i KEY`,
/// `chmod 600 KEY` and `ssh-keygen -f KEY` touch the file without exposing it, and public
/// keys are public.
fn reads_a_private_file(text: &str, m: std::ops::Range<usize>) -> bool {
    if text[m.clone()].ends_with(".pub") {
        return false;
    }
    let segment = command_segment(text, m.start);
    let lower = segment.to_ascii_lowercase();
    if ["ssh -i", "scp -i", "ssh-add", "ssh-keygen", "-i ", "identityfile", "chmod ", "--kubeconfig"]
        .iter()
        .any(|u| lower.contains(u))
        && !lower.contains("cat ")
    {
        return false;
    }
    READERS.iter().any(|r| lower.contains(r))
}

/// `tar czf keys.tgz ~/.ssh`, `cp -r ~/.aws /tmp/x`: the whole directory leaves.
fn copies_a_directory(text: &str, m: std::ops::Range<usize>) -> bool {
    let lower = command_segment(text, m.start).to_ascii_lowercase();
    ["tar ", "zip ", "cp -r", "cp -a", "rsync ", "scp -r", "curl ", "nc "].iter().any(|r| lower.contains(r))
}

/// The shell command (or line of code) the match belongs to, between separators.
fn command_segment(text: &str, at: usize) -> &str {
    let start = text[..at].rfind(['\n', ';', '&', '|']).map_or(0, |i| i + 1);
    let end = text[at..].find(['\n', ';', '&', '|']).map_or(text.len(), |i| at + i);
    &text[start..end]
}

/// `model.eval()`, `regex.exec(s)` and `ast.literal_eval(s)` are methods, not the builtins;
/// `exec(…)` from Node's `child_process` spawns a process (its own rule), it evaluates nothing.
fn not_a_method_call(text: &str, m: std::ops::Range<usize>) -> bool {
    let before = text[..m.start].chars().next_back();
    let node_exec = text[m.clone()].starts_with("exec") && text.contains("child_process");
    !matches!(before, Some('.') | Some('_')) && !node_exec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        for r in &RULES {
            r.validate().unwrap();
        }
    }
}
