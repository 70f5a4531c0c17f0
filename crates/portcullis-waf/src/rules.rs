//! The rule catalogue: every rule has a stable id, a category, a score (CRS severities:
//! critical 5, error 4, warning 3, notice 2) and a paranoia level. Signature rules are regexes
//! compiled once into one `RegexSet` per target class; tokenising detectors (SQLi, XSS) and
//! protocol checks have ids here too so exclusions and logs name them the same way.

/// Where a signature applies.
pub(crate) const T_VALUE: u8 = 1; // query, form, JSON, XML, multipart values, cookies, headers
pub(crate) const T_PATH: u8 = 2; // decoded path
pub(crate) const T_NAME: u8 = 4; // argument names and JSON keys
pub(crate) const T_ALL: u8 = T_VALUE | T_PATH | T_NAME;

/// One rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    /// Stable id.
    pub id: u32,
    /// Category (`sqli`, `xss`, `lfi`, ...).
    pub category: &'static str,
    /// Anomaly score added when it fires.
    pub score: u32,
    /// Lowest paranoia level at which it runs.
    pub paranoia: u8,
    /// What it detects.
    pub description: &'static str,
}

const fn r(id: u32, category: &'static str, score: u32, paranoia: u8, d: &'static str) -> RuleInfo {
    RuleInfo {
        id,
        category,
        score,
        paranoia,
        description: d,
    }
}

/// Protocol anomalies.
pub(crate) const METHOD_UNUSUAL: RuleInfo = r(
    100_001,
    "protocol",
    5,
    1,
    "method outside GET HEAD POST PUT PATCH DELETE OPTIONS",
);
pub(crate) const HOST_MISSING: RuleInfo = r(100_002, "protocol", 3, 1, "missing Host");
pub(crate) const HOST_IP: RuleInfo = r(100_003, "protocol", 3, 2, "Host is an IP address");
pub(crate) const FRAMING_CONFLICT: RuleInfo = r(
    100_004,
    "protocol",
    5,
    1,
    "Content-Length with Transfer-Encoding",
);
pub(crate) const BAD_CONTENT_LENGTH: RuleInfo = r(
    100_005,
    "protocol",
    5,
    1,
    "invalid or repeated Content-Length",
);
pub(crate) const BAD_TRANSFER_ENCODING: RuleInfo = r(
    100_006,
    "protocol",
    5,
    1,
    "Transfer-Encoding other than chunked",
);
// A notice only: search APIs send GET with a body, and the body is inspected anyway.
pub(crate) const BODY_ON_GET: RuleInfo = r(100_007, "protocol", 2, 1, "GET or HEAD with a body");
pub(crate) const CONTROL_CHARS: RuleInfo = r(
    100_008,
    "protocol",
    5,
    1,
    "NUL or control characters in path or arguments",
);
pub(crate) const BAD_ENCODING: RuleInfo = r(100_009, "protocol", 3, 1, "invalid percent-encoding");
pub(crate) const BAD_METHOD_TOKEN: RuleInfo = r(100_010, "protocol", 5, 1, "method is not a token");
pub(crate) const BAD_CONTENT_TYPE: RuleInfo =
    r(100_011, "protocol", 5, 1, "malformed Content-Type");
pub(crate) const MULTIPART_BAD: RuleInfo = r(100_012, "protocol", 5, 1, "malformed multipart body");
pub(crate) const JSON_BAD: RuleInfo = r(100_013, "protocol", 3, 2, "malformed JSON body");
pub(crate) const PROXY_HEADER: RuleInfo = r(100_014, "protocol", 5, 1, "Proxy header (httpoxy)");
pub(crate) const REQUEST_RANGE: RuleInfo = r(
    100_015,
    "protocol",
    5,
    1,
    "obsolete Request-Range header (range amplification)",
);
pub(crate) const MULTIPART_CHARSET: RuleInfo = r(
    100_016,
    "protocol",
    5,
    1,
    "multipart part in a charset other than UTF-8, ASCII or Latin-1",
);
pub(crate) const SCRIPT_UPLOAD: RuleInfo = r(
    250_007,
    "php",
    5,
    1,
    "upload of a server-side script file name",
);
pub(crate) const BODY_NO_TYPE: RuleInfo = r(
    100_017,
    "protocol",
    5,
    1,
    "request body without a Content-Type (no parser can be chosen)",
);
pub(crate) const BAD_RANGE: RuleInfo = r(
    100_018,
    "protocol",
    5,
    1,
    "Range with an end before its start or too many ranges",
);
pub(crate) const BAD_TARGET: RuleInfo = r(
    100_019,
    "protocol",
    5,
    1,
    "request target not in origin form (backslash, fragment, missing slash)",
);
pub(crate) const FULLWIDTH_ESCAPE: RuleInfo = r(
    100_021,
    "protocol",
    5,
    1,
    "%u escape of a full-width character (IIS normalisation evasion)",
);
pub(crate) const CONNECTION_CONFLICT: RuleInfo = r(
    100_022,
    "protocol",
    5,
    1,
    "Connection header with repeated or contradictory options",
);
pub(crate) const RESTRICTED_HEADER: RuleInfo = r(
    100_023,
    "protocol",
    5,
    1,
    "request header a gateway should not pass (Content-Encoding, WebDAV If/Lock-Token)",
);
pub(crate) const BAD_HOST: RuleInfo = r(
    100_024,
    "protocol",
    5,
    1,
    "Host with characters outside a host name, address and port",
);
pub(crate) const INVALID_UTF8: RuleInfo = r(
    100_025,
    "protocol",
    5,
    1,
    "percent-encoded bytes that are not UTF-8 (overlong or truncated sequences)",
);
pub(crate) const CRLF_NAME: RuleInfo = r(
    290_004,
    "crlf",
    5,
    1,
    "line break in a header value or argument name",
);
pub(crate) const RFI_PARAM: RuleInfo = r(
    230_004,
    "rfi",
    5,
    1,
    "remote URL in an include-style argument",
);
pub(crate) const LFI_BACKSLASH: RuleInfo =
    r(220_006, "lfi", 5, 1, "path traversal with backslashes");
pub(crate) const BRACE_COMMAND: RuleInfo = r(
    240_015,
    "rce",
    5,
    1,
    "shell brace expansion that assembles a command",
);
pub(crate) const PHP_INDIRECT: RuleInfo = r(
    250_010,
    "php",
    5,
    1,
    "PHP call through a variable, array or string pieces",
);
pub(crate) const HIDDEN_SCHEME: RuleInfo = r(
    210_003,
    "xss",
    5,
    1,
    "script URL scheme split by whitespace or control characters",
);
pub(crate) const BODY_SIZE_LIMIT: RuleInfo = r(110_001, "limit", 0, 1, "body larger than limit");
pub(crate) const JSON_LIMIT: RuleInfo =
    r(110_002, "limit", 0, 1, "JSON deeper or larger than limit");
pub(crate) const ARG_LIMIT: RuleInfo = r(110_003, "limit", 0, 1, "too many arguments");

/// Tokenising detectors.
pub(crate) const SQLI: RuleInfo = r(200_001, "sqli", 5, 1, "SQL injection (tokenised)");
pub(crate) const XSS: RuleInfo = r(210_001, "xss", 5, 1, "cross-site scripting (tokenised)");
pub(crate) const NOSQL_OPERATOR: RuleInfo = r(
    300_001,
    "nosql",
    5,
    1,
    "NoSQL operator in a key or argument name",
);
pub(crate) const SESSION_NAME: RuleInfo =
    r(320_002, "session", 5, 1, "session id passed as an argument");
pub(crate) const SCANNER: RuleInfo = r(330_001, "scanner", 5, 1, "security scanner user agent");
pub(crate) const XXE: RuleInfo = r(310_001, "xxe", 5, 1, "XML external entity or DOCTYPE");

/// A signature rule.
pub(crate) struct Sig {
    pub(crate) info: RuleInfo,
    pub(crate) targets: u8,
    pub(crate) pattern: &'static str,
}

const fn sig(info: RuleInfo, targets: u8, pattern: &'static str) -> Sig {
    Sig {
        info,
        targets,
        pattern,
    }
}

/// Signature rules. Patterns run on normalised (decoded, lowercase) text.
pub(crate) const SIGS: &[Sig] = &[
    // Path traversal and local file inclusion.
    sig(
        r(220_001, "lfi", 5, 1, "path traversal"),
        T_VALUE | T_PATH,
        r"(?:^|[/\\])\.{2,3}[/\\;]|(?:^|[/\\])\.\.$|\.\.[/\\]\.\.[/\\]|(?:0x5c|0x2f)(?:0x2e|\.){2}|(?:0x2e|\.){2}(?:0x5c|0x2f)",
    ),
    sig(
        r(220_002, "lfi", 5, 1, "access to an operating-system file"),
        T_VALUE | T_PATH,
        r"(?:^|[/\\])(?:etc[/\\]+(?:passwd|shadow|group|hosts|issue|motd|crontab|sudoers|master\.passwd|security|mysql|apache2?|nginx|httpd|ssh)|proc[/\\]+(?:self|\d+)[/\\]|sys[/\\]+(?:class|kernel|devices|firmware|block|bus|module|power)\b|windows[/\\]+(?:win\.ini|system32|system\.ini)|boot\.ini|winnt[/\\]|var[/\\]+log[/\\]|\.ssh[/\\]|usr[/\\]+local[/\\]+apache|\.aws[/\\]credentials|\.bash_history|\.htpasswd|\.htaccess|wp-config\.php|web\.config|\.git[/\\](?:config))",
    ),
    sig(
        r(220_003, "lfi", 5, 1, "file:// or php:// wrapper"),
        T_VALUE,
        r"(?:^|[^a-z])(?:file|php|phar|zip|glob|data|compress\.zlib|compress\.bzip2|ogg|rar|ssh2\.\w+)://",
    ),
    // Remote file inclusion.
    sig(
        r(230_001, "rfi", 5, 1, "URL with an IP address host"),
        T_VALUE,
        r"^(?:https?|ftps?)://(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[?[0-9a-f]{0,4}:[0-9a-f:]*:[0-9a-f]{0,4}\]?[/:])",
    ),
    sig(
        r(230_002, "rfi", 5, 1, "URL ending in ? (include trick)"),
        T_VALUE,
        r"^(?:https?|ftps?)://[^\s]+\?+$|^(?:file|ftps?|https?)\?+$",
    ),
    sig(
        r(230_003, "rfi", 5, 1, "remote include parameter"),
        T_VALUE,
        r"(?:\binclude\s*\(|\brequire(?:_once)?\s*\()\s*['\x22]?(?:https?|ftp)://",
    ),
    // OS command injection (also run on shell-folded text).
    sig(
        r(240_001, "rce", 5, 1, "shell command after a separator"),
        T_VALUE | T_PATH,
        r"(?:[;|&\n\r]|\$\(|\|\||&&)\s*(?:\$\{?[a-z_]\w*\}?\s+)*(?:[/\\]?(?:usr[/\\])?(?:s?bin[/\\]))?(?:cat|ls|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|ksh|csh|dash|python[23]?|perl|ruby|php|lua|node|echo|printf|ping|nslookup|dig|rm|chmod|chown|kill|pkill|sleep|telnet|ssh|scp|ftp|tftp|base64|xxd|awk|gawk|sed|grep|nl|tac|printenv|ifconfig|netstat|ps|wc|uniq|sh\.exe|cmd|powershell|pwsh|certutil|bitsadmin|whoami\.exe|net|systeminfo|tasklist|reg|mshta|rundll32|regsvr32|wmic|cscript|wscript|cp|mv|touch|mkdir|tar|zip|unzip|gzip|openssl|socat|busybox|crontab|useradd|passwd|sudo|nohup|xargs|dd|od|strings|hexdump|htop|visudo|vi|vim|nano|emacs|ansible[\w-]*|docker|kubectl|systemctl|mount|umount|fdisk|lsof|lsmod|insmod|modprobe|iptables|tcpdump|nmap|ssh-keygen|gcc|svn|apt|apt-get|yum|dnf|rpm|dpkg|pip3?|npm|java|javac|jrunscript|jshell|groovy|scala|tclsh|wish|irb|php-cgi|ruby|rlwrap|screen|tmux|chroot|chattr|setfacl|getfacl|shutdown|reboot|halt|poweroff|killall|lastlog|df|du|lscpu|lsblk|dmesg|journalctl|unset|readlink|realpath|stat|ldd|nm|objdump|strace|ltrace|gdb|renice|bzip2|xz|7z|rar|unrar|zcat|zgrep|bzcat|xzcat|fmt|shuf|iconv|base32|uuencode|uudecode|rsync|sftp|smbclient|mysql|psql|sqlite3|redis-cli|mongo|ldapsearch|whois|traceroute|mtr|arp|hostname|nproc|getent|bcdboot|bcdedit|schtasks|taskkill|netsh|vssadmin|wevtutil|icacls|takeown|attrib|xcopy|robocopy|mklink|goto|echo|ipconfig|nbtstat|qwinsta|runas|msiexec|forfiles|findstr|cd\s+[/~.\\$]\S*|pwd|perf|aptitude|regedit|iwr|irm|iex|rmt|rmt-tar|comm|column|ansible[\w-]*|chef-[\w-]+|cscli|cpulimit|lastlogin|invoke-\w+|start-process|bitsadmin|curl\.exe|wget\.exe|c89|c99|bsdtar|iwmi|aa-[a-z][\w-]*|rmt-[a-z]+|visudo|bcdboot)(?:\d+(?:\.\d+)*)?(?:$|[\s;|&<>`)'\x22]|\$\{|/[a-z?]\b)",
    ),
    sig(
        r(240_002, "rce", 5, 1, "command substitution with a command"),
        T_VALUE | T_PATH,
        r"\$\(\(?\s*[\w$(]|\$\[\s*(?:\]|\d+\s*[-+*/%]|\$)|`\s*(?:[/\\]?(?:usr[/\\])?(?:s?bin[/\\]))?(?:cat|ls|id|whoami|uname|wget|curl|nc|bash|sh|python[23]?|perl|ruby|php|echo|ping|nslookup|dig|rm|sleep|base64|awk|sed|grep|head|tail|env|printenv|ifconfig|netstat|ps|cut|tr|hostname|uptime|who|w|pwd|touch|chmod|find|xargs|sort|more|less)(?:\s[^`]*)?`",
    ),
    sig(
        r(240_003, "rce", 5, 1, "shell path or interpreter"),
        T_VALUE | T_PATH,
        r"(?:^|[\s;|&`(<>='\x22])(?:/bin/(?:ba|z|k|c|da)?sh\b|/usr/bin/(?:env|perl|python\d?|php|ruby|wget|curl|nc)\b|cmd(?:\.exe)?\s*/[ck]\b|powershell(?:\.exe)?\s+-|%comspec%|\bnc\s+-[elnv]|\bbash\s+-[ci]\b|/dev/(?:tcp|udp)/)",
    ),
    sig(
        r(
            240_004,
            "rce",
            5,
            1,
            "command at the start with an argument",
        ),
        T_VALUE,
        r"^\s*(?:cat|ls|id|uname|wget|curl|nc|ping|nslookup|rm|chmod|whoami|ifconfig|netstat|ps|bash|sh|zsh|ksh|dash|echo|python\d?|perl|ruby|php|node|env|find|ansible|docker|kubectl|mysql|psql|powershell|pwsh|cmd|nohup|xargs|socat|telnet|base64|time|alias|set|who|perf|flock|fold|trap|bridge|sudo|su|kill|sleep|touch|tar|chown|busybox)(?:\s+[\w.,=-]+)?\s+(?:-{1,2}[a-z]|/|~|\$|\.\.?/|%|>|<|[a-z]:\\)",
    ),
    sig(
        r(
            240_005,
            "rce",
            5,
            1,
            "shell redirection to a sensitive place",
        ),
        T_VALUE,
        r"(?:>|>>)\s*/(?:tmp|dev|etc|var)/|<\s*/etc/",
    ),
    sig(
        r(240_006, "rce", 5, 1, "shellshock function definition"),
        T_ALL,
        r"\(\s*\)\s*\{[^}]*;\s*\}\s*;|^\s*\(\s*\)\s*\{",
    ),
    // PHP injection.
    sig(
        r(250_001, "php", 5, 1, "PHP open tag"),
        T_VALUE,
        r"\[/?php\]|\{/?php\}|<\?(?:php\b|=)|<\?\s+php\b|<\?xml\s*:\s*\w|<\?\s*$|\[\?php|<\?\s*(?:\$\w|(?:echo|print|eval|system|exec|passthru|include|require)\b)",
    ),
    sig(
        r(250_002, "php", 5, 1, "PHP code execution function"),
        T_VALUE | T_PATH,
        r"\b(?:system|shell_exec|passthru|popen|proc_open|pcntl_exec|assert|create_function|call_user_func(?:_array)?|preg_replace|base64_decode|gzinflate|gzuncompress|str_rot13|file_get_contents|file_put_contents|fopen|fwrite|fputs|readfile|include|include_once|require|require_once|phpinfo|highlight_file|show_source|move_uploaded_file|unserialize|var_dump|print_r|ini_set|ini_get|getenv|putenv|posix_\w+|array_map|usort|array_filter|dl|mail|chr|ord|escapeshellcmd|symlink|unlink|rename|scandir|glob|opendir|curl_exec|fsockopen|stream_socket_client|extract|parse_str|mb_ereg_replace|register_shutdown_function|set_error_handler|ob_start|header|setcookie|apache_\w+|get_defined_vars|get_defined_functions|get_cfg_var|hex2bin|curl_init|gzdecode|bzdecompress|strip_tags|filegroup|fileowner|getcwd|phpversion|php_uname|intval|is_array|pfsockopen)(?:\s|#[^\n]*\n|//[^\n]*\n|/\*(?s:.)*?\*/)*\(",
    ),
    sig(
        r(250_003, "php", 5, 1, "PHP superglobal or variable function"),
        T_ALL,
        r"\$_(?:get|post|cookie|request|server|files|session|globals)\b|\$globals\b|\$\{?[a-z_]\w*\}?\s*\(|\bphp://|\$\s*(?:[a-z_]\w*)?\s*(?:\[[^\]]{1,32}\]\s*)+\(|\$\s*\{[^}]{1,32}\}\s*\(|\$\s+\{\s*[^\s}]|\$\{\s*(?:['\x22]|\$)",
    ),
    sig(
        r(250_004, "php", 5, 1, "PHP serialized object"),
        T_VALUE,
        r#"(?:^|[;{])[oc]:\d+:"[\w\\]+":\d+:\{|^a:\d+:\{[sidbo]:"#,
    ),
    sig(
        r(250_005, "php", 5, 1, "PHP configuration directive"),
        T_VALUE,
        r"\b(?:memory_limit|max_execution_time|extension_dir|include_path|error_log|display_errors|short_open_tag|unserialize_max_depth|unserialize_callback_func|upload_tmp_dir|post_max_size|upload_max_filesize|register_globals|magic_quotes_gpc|sendmail_path|expose_php|output_handler|allow_url_include|allow_url_fopen|auto_prepend_file|auto_append_file|disable_functions|open_basedir|safe_mode|suhosin\.\w+)\s*=|\b(?:opcache|mbstring|session|pcre|mysqli|mysqlnd|pdo_mysql|phar|xdebug|zend|assert|mail|sqlite3|openssl|apc|apcu|soap|iconv|intl|user_ini)\.[a-z_][\w.]*\s*=|^\s*(?:zend_)?extension\s*=",
    ),
    // Server-side template injection.
    sig(
        r(
            260_001,
            "ssti",
            5,
            1,
            "template expression with arithmetic or object access",
        ),
        T_VALUE,
        r"\{\{\s*[\w.'\x22\[\]]+\s*[*+/-]\s*[\w'\x22]+\s*\}\}|\{\{[^}]*(?:__class__|__mro__|__subclasses__|__globals__|__builtins__|__init__|config\.|self\.|request\.application|lipsum|cycler|joiner|namespace\.|\.getclass\(|\|attr\()|\$\{\s*\d+\s*[*+/-]\s*\d+\s*\}|#\{\s*\d+\s*[*+/-]\s*\d+\s*\}|<%=?\s*[\w.]+\s*[*+/-]\s*\d+\s*%>|\{%\s*(?:import|include|raw|debug)\b[^%]*(?:os|subprocess|popen|system|class)\b|\bt\(java\.lang|\{php\}|\{\{\s*(?:range|dump|constant|include)\s*\(",
    ),
    // SSRF targets.
    sig(
        r(270_001, "ssrf", 5, 1, "cloud metadata or loopback target"),
        T_VALUE,
        r"(?:^|[^\w.])(?:(?:https?|gopher|dict|ftp|ldap|tftp|netdoc|jar)://)?(?:\[?::ffff:)?(?:169\.254\.169\.254|169\.254\.170\.2|metadata\.google\.internal|metadata\.azure\.com|100\.100\.100\.200|\[?fd00:ec2::254\]?|2852039166|0xa9fea9fe|0251\.0376\.0251\.0376)(?:[/:?\]]|$)|^(?:https?|gopher|dict|ftp|ldap|tftp)://(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|0|\[::1?\]|2130706433|0x7f0+1|017700000001|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+|172\.(?:1[6-9]|2\d|3[01])\.\d+\.\d+)(?:[/:?#]|$)",
    ),
    sig(
        r(270_002, "ssrf", 5, 1, "internal URL scheme"),
        T_VALUE,
        r"^(?:gopher|dict|ldap|ldaps|tftp|netdoc|jar|sftp|rmi|iiop|corba|nis|nds|mailto|imap|pop3|smtp|telnet)://",
    ),
    // Java, Log4Shell and expression languages.
    sig(
        r(280_001, "java", 5, 1, "Log4Shell-style lookup"),
        T_ALL,
        r"\$\{(?:[^}]*\$\{)*[^}]*(?:j\W*n\W*d\W*i|ldap|rmi|dns|nis|iiop|corba|nds|http)\W*:|jndi\s*:\s*(?:ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\s*:|\$\{\s*(?:jndi|lower|upper|sys|java|date|main|ctx|base64|spring|k8s|docker|web|log4j|bundle|marker|sd|map|event|::-)\s*:",
    ),
    sig(
        r(280_002, "java", 5, 1, "Java class or runtime access"),
        T_ALL,
        r"\bjava\.(?:lang|io|net|nio|util|beans|rmi|security|sql|text|awt|applet)\.\w+|\bjava\.[\w.]*runtime\b|\bjavax\.\w+|getruntime\s*\(|\.exec\s*\(|processbuilder|classloader|\.forname\s*\(|\.getmethod\s*\(|\.invoke\s*\(|\.newinstance\s*\(|\borg\.apache\.(?:commons|xalan|struts2?|tomcat|catalina|log4j|bcel|xbean|myfaces|naming|wicket|shiro)\b|\borg\.springframework\.\w+|\bcom\.(?:sun|mchange|alibaba\.fastjson|fasterxml)\.\w+|\bbsh\.interpreter|\bgroovy\.lang|com\.sun\.(?:rowset|org\.apache)|class\.module\.classloader|#_memberaccess|@ognl|ognlcontext|xwork\.methodaccessor|\bnew\s+java\.|\bjava\.lang\b|\borg\.omg\.\w+|\bcom\.opensymphony\.\w+|\bjavax?\.script\b|\bjdbcrowsetimpl|\bclasspathxmlapplicationcontext|\bspring\.cloud\.function|\bjavascript:.*java\b",
    ),
    sig(
        r(280_003, "java", 5, 1, "Java serialized object"),
        T_VALUE,
        r"\xac\xed\x00\x05|^ro0ab|aced0005|\brO0AB",
    ),
    sig(
        r(280_004, "java", 5, 1, "expression language injection"),
        T_VALUE,
        r"\$\{[^}]*(?:\.getclass|\.class\.|@java|runtime|\bnew\s|\bt\()|#\{[^}]*(?:\.getclass|runtime|\bt\(|\bnew\s)|%\{[^}]*(?:#|@|\.getclass|\(#)",
    ),
    // CRLF and header injection, request smuggling in arguments.
    sig(
        r(290_001, "crlf", 5, 1, "header injection"),
        T_VALUE | T_PATH | T_NAME,
        r"[\r\n]\s*(?:remote-(?:addr|ip)|originating-ip|via|host|forwarded(?:-[\w]+)?|cookie|set-cookie|location|content-(?:type|length|disposition)|refresh|x-[\w-]+|transfer-encoding|access-control-[\w-]+|link|cache-control|connection|http/\d(?:\.\d)?)\s*:?|[\r\n](?:get|post|head|put|delete|options|trace|track|connect|patch)\s+\S+\s+http/",
    ),
    sig(
        r(290_002, "crlf", 5, 1, "response splitting"),
        T_VALUE | T_PATH,
        r"[\r\n]\s*http/\d|[\r\n]{2}\s*<(?:html|script|body)",
    ),
    sig(
        r(
            250_006,
            "php",
            5,
            1,
            "parenthesised PHP function name called",
        ),
        T_VALUE,
        r#"['"](?:system|exec|shell_exec|passthru|popen|proc_open|assert|phpinfo|strrev|str_rot13|base64_decode)['"]\s*\(|\(\s*['"]?\s*(?:system|exec|shell_exec|passthru|popen|proc_open|assert|eval|phpinfo|create_function|call_user_func)\s*['"]?\s*\)\s*\("#,
    ),
    sig(
        r(
            250_008,
            "php",
            5,
            1,
            "PHP function name built from string pieces",
        ),
        T_VALUE,
        r#"['"][a-z_]*['"]\s*\.\s*\(?\s*['"][a-z_]*['"]\s*\)?\s*(?:\.\s*\(?\s*['"][a-z_]*['"]\s*\)?\s*)*\)?\s*\("#,
    ),
    // Windows cmd.exe control flow, which has no business in a parameter.
    sig(
        r(240_008, "rce", 5, 1, "Windows cmd FOR or IF statement"),
        T_VALUE,
        r#"\bfor\s+(?:/[a-z](?:\s+(?:"[^"]*"|[a-z]:\S*))?\s+)*%{1,2}\S+\s+in\s*\(|\bif\s+(?:/i\s+)?(?:not\s+)?(?:(?:exist|defined|errorlevel|cmdextversion)\s+\S|\(?\s*\S+\s*\)?\s+(?:equ|neq|lss|leq|gtr|geq)\s+\S|\(?\s*\S+\s*\)?\s*==\s*\S)"#,
    ),
    // Shell globs standing in for letters of a system path (`/etc/[p]asswd`).
    sig(
        r(
            240_009,
            "rce",
            5,
            1,
            "shell glob or process substitution in a system path",
        ),
        T_VALUE | T_PATH,
        r#"(?:^|[\s;|&'"=(`])/(?:etc|bin|sbin|usr|proc|dev|tmp|var|root|home)/[\w./-]*\[[^\]/\s]{1,12}\]|(?:^|[\s;|&])[<>]\(\s*[a-z]|\{,[\w/.-]+,|(?:^|[\s;|&])\\[a-z]{2,}\b"#,
    ),
    sig(
        r(240_010, "rce", 5, 1, "command run through a wrapper"),
        T_VALUE,
        r"(?:^|[;|&\n`]\s*)['\x22]?(?:time|nohup|strace|ltrace|nice|timeout|sudo|doas|env|cpulimit|stdbuf|unbuffer|xargs|busybox)(?:\s+-{1,2}[\w=-]+(?:\s+\d+)?)*\s+(?:sh|bash|zsh|dash|ksh|whoami|id|uname|ifconfig|ipconfig|cat|ls|wget|curl|nc|python\d?|perl|ruby|php|chef-[\w-]+|ansible[\w-]*|bsdtar|tar|find|env|busybox)\b",
    ),
    // Server-side includes.
    sig(
        r(240_007, "rce", 5, 1, "server-side include directive"),
        T_VALUE | T_PATH,
        r"<!--\s*#\s*(?:exec|include|echo|config|set|printenv|fsize|flastmod|if|elif)\b",
    ),
    // LDAP filter injection: a filter operator opened inside a value, or a break out of one.
    sig(
        r(350_001, "ldap", 5, 1, "LDAP filter injection"),
        T_VALUE | T_PATH,
        r"\(\s*[|&!]\s*\(\s*[\w.;-]+\s*[~<>]?=|\*\s*\)\s*\(\s*[|&!]?\s*[\w.;-]+\s*[~<>]?=|\)\s*\(\s*[|&!]\s*(?:\(|\)|$)|\)\s*[|&!]?\s*\(\s*[a-z][\w.;-]*\s*[~<>]?=",
    ),
    // Mail protocol injection (SMTP and IMAP commands after a line break).
    sig(
        r(290_003, "crlf", 5, 1, "mail command or header injection"),
        T_VALUE | T_PATH | T_NAME,
        r"[\r\n]\s*(?:rcpt\s+to\s*:|mail\s+from\s*:|(?:helo|ehlo)\s+\S|(?:bcc|cc|to|from|reply-to|subject)\s*:\s*\S|[a-z]?\d{1,4}\s+(?:capability|fetch|login|select|examine|list|lsub|store|copy|uid|logout|noop|authenticate|append|delete|rename|search|starttls)\b)",
    ),
    // Out-of-band interaction domains used to confirm blind injection.
    sig(
        r(360_001, "oast", 5, 1, "out-of-band interaction domain"),
        T_VALUE | T_PATH,
        r"[\w-]\.(?:interact\.sh|oast\.(?:fun|live|me|online|pro|site)|burpcollaborator\.net|oastify\.com|dnslog\.cn|ceye\.io|requestbin\.net|canarytokens\.com)\b",
    ),
    // Internal hosts named without a scheme (`localhost/`, `host.docker.internal:2375`).
    sig(
        r(270_003, "ssrf", 5, 1, "scheme-less internal host"),
        T_VALUE,
        r"^\s*(?:localhost\d?(?:\.localdomain\d?)?|ip6-(?:localhost|loopback)|ipv6-localhost|lvh\.me|kubernetes\.docker\.internal|kubernetes\.default\.svc\.cluster\.local|localtest\.me|[\w-]+\.localhost|host\.(?:docker|containers)\.internal|gateway\.docker\.internal|kubernetes\.default(?:\.svc)?|127\.\d+\.\d+\.\d+|0\.0\.0\.0|\[::1?\])[:/]",
    ),
    // Dot-directories of tools and agents that hold credentials or configuration.
    sig(
        r(
            220_004,
            "lfi",
            5,
            1,
            "access to a restricted dot-file or directory",
        ),
        T_VALUE | T_PATH,
        r"/\.(?:git|svn|hg|bzr|env(?:\.[\w.-]+)?|aws|ssh|docker|kube|gnupg|npmrc|pypirc|netrc|pgpass|bash_history|zsh_history|mysql_history|psql_history|htpasswd|htaccess|ds_store|idea|vscode|claude|cline|clinerules|codex|continue|cursor|junie|n8n|windsurf|cursorignore|cursorrules|aider[\w.-]*|gemini|copilot|config/gcloud|roo|zed|kiro|rovodev|opencode|a0proj|plandex|fabric|aiignore|boto)(?:/|$)",
    ),
    sig(
        r(
            200_003,
            "sqli",
            5,
            1,
            "database catalog or system table name",
        ),
        T_VALUE,
        r"\b(?:information_schema|pg_catalog|pg_shadow|pg_user|pg_database|pg_authid|msysaccessobjects|msysaccessstorage|msysobjects|msysqueries|msysrelationships|sqlite_master|sqlite_temp_master|sqlite_schema|sysobjects|syscolumns|sysusers|tempdb|msdb|northwind|schema_name|mysql\.(?:user|db|host)|master\.\.sysdatabases|sys\.(?:tables|columns|objects|databases|sql_logins|user_summary))\b",
    ),
    sig(
        r(
            220_005,
            "lfi",
            5,
            1,
            "request for a backup, database or key file",
        ),
        T_PATH,
        r"\.(?:bak|backup|old|orig|save|swp|swo|sql|sqlite3?|db|mdb|rdb|dbf|pem|key|pfx|p12|jks|kdbx|pwd|htr|ida|idq|printer)$|~$|\.\w+~/|(?:^|/)(?:debug|errors?)\.log$|\.(?:sql|db|sqlite3?|bak|dump)\.(?:gz|zip|bz2|xz|tar|7z|rar)$|(?:^|/)proc/(?:interrupts|cpuinfo|meminfo|version|cmdline|environ|mounts|modules|kallsyms|net/)|(?:^|/)sys/(?:class|kernel|devices|firmware|block|bus|module|power)(?:/|$)",
    ),
    // JSON operators of PostgreSQL and MySQL used to build tautologies.
    sig(
        r(200_002, "sqli", 5, 1, "JSON operator in SQL"),
        T_VALUE | T_PATH,
        r#"'\s*::\s*jsonb?\b|'\s*(?:@>|<@|\?\||\?&|\?)\s*'|\bjson_(?:extract|depth|keys|contains|search|valid|type|length|unquote|value)\s*\("#,
    ),
    // GraphQL schema discovery.
    sig(
        r(370_001, "graphql", 5, 1, "GraphQL introspection query"),
        T_VALUE,
        r"\b__schema\s*\{|\b__type\s*\(\s*name\s*:",
    ),
    // NoSQL.
    sig(
        r(
            300_002,
            "nosql",
            5,
            1,
            "NoSQL operator or server-side JavaScript",
        ),
        T_VALUE | T_PATH,
        r#"\[\s*\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|not|nor|elemmatch|function|accumulator)\s*\]|\{\s*['"]?\$(?:ne|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|not|nor|elemmatch|function|accumulator)['"]?\s*:|\$where\s*[:=]|\bdb\.(?:\w+\.)?(?:find|insert|update|remove|drop|getcollection)\w*\s*\(|\bthis\.\w+\s*(?:==|!=|>|<|\.match\()|\bsleep\s*\(\s*\d+\s*\)\s*(?:\|\||&&)"#,
    ),
    // XXE in any value.
    sig(
        r(310_002, "xxe", 5, 1, "DOCTYPE with entity in a value"),
        T_VALUE,
        r"<!doctype[^>]*\[|<!entity\s|<!element\s|\bsystem\s+['\x22](?:file|https?|ftp|php|jar|netdoc)[:/]|xi:include|xmlns:xi\s*=",
    ),
    // Session fixation.
    sig(
        r(320_001, "session", 5, 1, "cookie set from a value"),
        T_VALUE,
        r"\.cookie\b.*?;\W*?(?:expires|domain)\W*?=|\bhttp-equiv\W+set-cookie\b",
    ),
    // Generic code injection (Node.js, Python, Ruby).
    sig(
        r(340_001, "code", 5, 1, "Node.js or Python code execution"),
        T_VALUE,
        r"require\s*\(\s*['\x22`](?:child_process|fs|net|vm|os|http)['\x22`]\s*\)|child_process|process\.(?:mainmodule|binding|exit|kill)|\.constructor\s*\(\s*['\x22`]return|__proto__|constructor\s*\[\s*['\x22`]prototype|\bconstructor\.prototype\b|\b__import__\s*\(|\bos\.(?:system|popen|spawn\w*|exec\w*)\s*\(|\bsubprocess\.\w+|\bimportlib\b|\bpickle\.loads|\bcommands\.getoutput|\brequire\s*(?:\.\s*(?:main|cache|resolve)\b|\[)|\bprocess\s*\.\s*(?:env|dlopen|getbuiltinmodule)\b|_\$\$nd_func\$\$_|\$\d+:(?:[\w]+:)*(?:constructor|prototype|__proto__)\b|\b__js_function\b|\.(?:readdirsync|readfilesync|writefilesync|execsync|spawnsync|execfilesync)\s*\(|\bkernel\.(?:exec|system|spawn)|\bio\.popen|\bopen3\.|\bexec\s*\(\s*['\x22]|\beval\s*\(\s*(?:compile|base64|atob|string\.fromcharcode|unescape|request|params)",
    ),
    sig(
        r(
            340_003,
            "code",
            5,
            1,
            "JavaScript infinite loop (event-loop denial of service)",
        ),
        T_VALUE,
        r#"\bwhile\s*\(\s*(?:(?:!\s*!\s*)*(?:true|this|[+-]?[1-9]\d*|"[^"]+"|'[^']+'|`[^`]+`|string|number|object|array|function|boolean|\[\s*\]|\{\s*\})|!\s*(?:!\s*!\s*)*(?:false|null|undefined|nan|[+-]?0|""|''))\s*\)\s*(?:[;{]|$)|\bfor\s*\(\s*;\s*;\s*\)"#,
    ),
    sig(
        r(
            340_002,
            "code",
            5,
            1,
            "Node.js prototype pollution in a name",
        ),
        T_NAME,
        r"__proto__|constructor\]?\[?\.?prototype",
    ),
    // Shell tools that have no other meaning, as the whole value or with arguments.
    sig(
        r(
            240_011,
            "rce",
            5,
            1,
            "Unix or Windows tool named at the start of a value",
        ),
        T_VALUE,
        r"^\s*(?:(?:ifconfig|ipconfig|whoami|uname|nslookup|chmod|chown|visudo|cscli|busybox|bsdtar|ansible-[a-z]+|chef-[a-z]+|aa-[a-z]+(?:-[a-z]+)*|rmt-[a-z]+|ncat|netcat|iwmi|certutil|bitsadmin|invoke-[a-z]+|start-process|wmic|xxd|ssh-keygen|systeminfo|tasklist|netstat|c89|c99|gcc\d+(?:\.\d+)*|python\d\.\d+|ruby\d\.\d+|perl\d\.\d+)(?:\s+\S|\s*[\r\n;|&]))",
    ),
    // Words that are English too count only with shell syntax around them.
    sig(
        r(
            240_012,
            "rce",
            5,
            1,
            "shell built-in or tool after a command separator",
        ),
        T_VALUE | T_PATH,
        r#"(?:[;|&\n\r`]|\$\(|&&|\|\|)\s*(?:find|fold|flock|bridge|trap|env|set|who|time|perf|alias|unalias|export|source|exec|eval|tar)(?:\s+(?:-{1,2}[a-z]|/|~|\$|['"]|[\w.-]+=)|\s+[\w-]*(?:/|\.[a-z0-9]+)[\w./-]*\s*$|\s*$)"#,
    ),
    sig(
        r(240_013, "rce", 5, 1, "shell expansion syntax"),
        T_VALUE,
        r#"\$\{[a-z_]\w*(?:#|%|//?|\^|,)[^}]*\}|(?:^|[;|&`(]\s*)\$\{?[a-z_]\w*\}?\s+-[a-z]\b|\b[a-z]+\s*<<<\s*['"]?[\w$/-]|^~[+-]\d*$|(?:^|[\s;|&])!-\d+(?:$|[\s;|&!])|(?:^|[;|&\n`]\s*)alias\s+(?:[-+][a-z+]+\s+)*['"]?[\w.-]+['"]?=|\$\w+/(?:tcp|udp)/\d|\b(?:ba|z|k|da)?sh(?:\$\w+|\$\{\w*\})+\s+-c\b|(?:^|[\s;|&'"=(`])/[a-z]*\[[a-z/]{1,8}\][a-z]*(?:/|\s|$)"#,
    ),
    sig(
        r(240_014, "rce", 5, 1, "path into a bin directory"),
        T_VALUE,
        r#"(?:^|[;|&'"=(`<>]\s*)/?(?:usr/(?:local/)?)?s?bin/[a-z][\w.+-]*"#,
    ),
    sig(
        r(250_009, "php", 5, 1, "high-risk PHP function called"),
        T_VALUE,
        r"(?:call_user_func(?:_array)?|fsockopen|gzdecode|gzinflate|gzuncompress|zlib_decode|shell_exec|proc_open|base64_decode|str_rot13|create_function|pcntl_exec|stream_get_contents)\s*=?\s*\(",
    ),
    // SQL functions called where a value starts or after SQL punctuation or keywords.
    sig(
        r(200_004, "sqli", 5, 1, "SQL function call in an SQL context"),
        T_VALUE | T_PATH,
        r#"(?:^|['"`)(,=+*/|&<>]|\b(?:select|and|or|where|union|by|having|when|then|else|if|not)\s)\s*(?:ifnull|isnull|nullif|coalesce|sysdate|substr|substring|strcmp|rtrim|ltrim|rand|ascii|concat(?:_ws)?|group_concat|instr|lpad|rpad|unhex|benchmark|load_file|extractvalue|updatexml|current_user|session_user|system_user|iif|lo_get|lo_import|pg_read_file|pg_ls_dir|pg_sleep|make_set|soundex|find_in_set|starts_with|unistr|jsonb?_\w+|now)\s*\(|(?:['"`]|\b(?:select|and|or|where|union|by|having|when|then|else|if|not)\s)\s*(?:user|insert|trim|pow|power|sin|cos|char|mid|locate|sleep|database|version|schema|div|elt|conv|hex|ord|length|count|cast|convert)\("#,
    ),
    sig(
        r(200_005, "sqli", 5, 1, "SQL statement or clause fragment"),
        T_VALUE,
        r#"['"`]\s*;\s*(?:select|insert|update|delete|drop|exec|declare|shutdown)\s+[\w@*(]|\bexec(?:ute)?\s+(?:master\.|xp_\w+|sp_\w+|immediate\b|\(\s*@)|\bprocedure\s+analyse\b|[\w)'"]\s*::\s*(?:int[248]?|jsonb?|integer|bigint|smallint|text|varchar|numeric|regclass|oid|double\s+precision|bytea)\b|\b(?:create|alter|drop|truncate)\s+(?:table|function|procedure|database|trigger|view|user|schema)\s+[`"\w]|;\s*(?:(?:drop|truncate|alter|create)\s+(?:table|database|schema|function|procedure|user|view|trigger)\b|insert\s+into\b|update\s+[\w`"]+\s+set\b|delete\s+from\b|replace\s+into\b|shutdown\b|declare\s+@)|\bas\s*[`"'][\w\s]*[`"']?\s*from\b|[`"]\s*regexp\s|/\*\s*[!+]|\)\s*like\s*\(|\bcase\s+when\b.+\bthen\b|\bhaving\s+[\w`(]+[\w`()*]*\s*(?:[=<>]|like\b)|\bif\s*\(\s*\d+\s*[=<>]|\b\d+\.e(?:\(|\.[a-z_])|[\w.+-]+@[\w-]+(?:\.[\w-]+)+['"`]\s*(?:/\*.*?\*/\s*)?;|\bwaitfor\s+delay\b|\bselect\s+pg_sleep\b|\bselect\s+if\s*\(|^\s*div\s*\(\s*-?[\d.]+\s*,|'\s*[\[{][^']*[\]}]\s*'\s*(?:->>?|#>>?|@>|<@|\?[|&]?|<|>|=)"#,
    ),
    // Script that needs no tag: obfuscated schemes, CSS and DOM sinks, quoted handlers.
    sig(
        r(
            210_002,
            "xss",
            5,
            1,
            "script URL in CSS, DOM sink or injected handler",
        ),
        T_VALUE,
        r#"url\s*\(\s*['"]?\s*(?:javascript|vbscript)\b|<\s*(?:[a-z]\s+){3,}[a-z]\b|<\s*[a-z]+\s*:\s*script\b|<\??\s*import\s*implementation\s*=|\+adw-[\s\S]{0,64}?\+ad4-|!\[\]\s*[+)\]]|\+\[\]|!!\[\]|\b(?:atob|btoa)\s*\(|\.\s*(?:call|apply)\s*`|\b(?:self|window|top|parent|globalthis|frames)\s*\[\s*['"`]|¼\s*/?[a-z][a-z0-9]*[^¾]{0,64}¾|^\s+on[a-z]{3,50}\s*=|-moz-binding\s*:|\bbehavior\s*:\s*url|\bdata:\s*[\w/+-]*\s*,\s*<|javascript:\s*\\|(?:^|['"`/;]|\s)\s*(?:on(?:load|error|click|focus|blur|zoom|mouse\w+|key\w+|submit|change|input|toggle|begin|animation\w+|transition\w+|pointer\w+|webkit\w+|beforeunload|unload|pageshow|hashchange|message|scroll|resize|drag\w*|drop|copy|cut|paste|auxclick|dblclick|contextmenu|wheel|search|select|show|invalid|start|finish|bounce|readystatechange)|formaction|srcdoc|xlink:href)\s*=(?:[^=]|$)|\b(?:document|window)\s*\.\s*(?:[a-z]+\s*\.\s*)*(?:cookie|location|write(?:ln)?|domain|createelement|queryselector(?:all)?|getelementby\w+|appendchild|textcontent|innerhtml|outerhtml)\b"#,
    ),
    // A whole request line inside a value (smuggling a second request).
    sig(
        r(290_005, "crlf", 5, 1, "HTTP request line inside a value"),
        T_VALUE,
        r"\b(?:get|post|head|put|delete|options|trace|track|connect|patch|propfind|mkcol|copy|move|lock|unlock)\s+(?:https?://|/)\S*\s+http/\d(?:\.\d)?\b",
    ),
    // PHP builtins whose call is split by comments or unusual whitespace: that is code.
    sig(
        r(
            250_011,
            "php",
            5,
            1,
            "PHP function call split by comments or whitespace",
        ),
        T_VALUE | T_PATH,
        r"\b(?:exec|system|passthru|shell_exec|popen|proc_open|file|file_exists|file_get_contents|fopen|readfile|assert|assert_options|strrev|unpack|substr|phpinfo)(?:\(|(?:\s*(?:/\*(?s:.)*?\*/|//[^\n]*\n|#[^\n]*\n)|\s{2,}|[\t\r\n\x0b])(?:\s|/\*(?s:.)*?\*/|//[^\n]*\n|#[^\n]*\n)*\()[^)]*\)",
    ),
    sig(
        r(340_004, "code", 5, 1, "JavaScript or Ruby code construct"),
        T_VALUE,
        r#"\bfunction\s*\(\s*\)\s*\{|\bnew\s+function\(|\.constructor\s*\.\s*constructor\b|\bmodule\.exports\s*=|\bconsole\s*(?:\.\s*\w+|\[\s*['"`]\w+['"`]\s*\])\s*(?:\.\s*(?:call|apply|bind)\s*)?\(|\bprocess\s*\[|\bprocess\.spawn\s*\(|\bwhile\s*\(\s*(?:[+-]?infinity|new\s+\w+|!\s*``)\s*\)"#,
    ),
    sig(
        r(270_004, "ssrf", 5, 1, "data: URL or malformed loopback URL"),
        T_VALUE | T_NAME,
        r"^data:(?:text|application)/[\w.+-]+(?:[;,]|$)|^https?:/?(?:127\.\d+\.\d+\.\d+|localhost)\b|\bmetadata\.packet\.net\b|\bunix:[^|\s]*\|",
    ),
    // Inputs known to hang or overflow parsers rather than inject anything.
    sig(
        r(
            380_001,
            "dos",
            5,
            1,
            "numeric parser denial-of-service trigger",
        ),
        T_VALUE,
        r"\b2\.225073858507201\d*e-0*308\b|^4294967296$",
    ),
];

/// Scanner user agents (substring match, lowercase).
pub(crate) const SCANNERS: &[&str] = &[
    "nikto",
    "sqlmap",
    "nmap",
    "nessus",
    "acunetix",
    "dirbuster",
    "w3af",
    "havij",
    "masscan",
    "zgrab",
    "wpscan",
    "arachni",
    "openvas",
    "nuclei",
    "gobuster",
    "ffuf",
    "fimap",
    "netsparker",
    "webinspect",
    "appscan",
    "paros",
    "zmeu",
    "morfeus",
    "jaascois",
    "pangolin",
    "bsqlbf",
    "sql power injector",
    "whatweb",
    "wfuzz",
    "dirb/",
    "commix",
    "skipfish",
    "webshag",
    "nsauditor",
    "grendel-scan",
    "mysqloit",
    "zap/",
    "(hydra)",
    "blackwidow",
    "brutus",
    "floodgate",
    "metis",
    "jbrofuzz",
    "absinthe",
    "webvulnscan",
    "burpcollaborator",
    "struts-pwn",
    "teh forest lobster",
    "crowdstrike",
    "qualys",
    "detectify",
    "httpx",
    "interactsh",
    "censysinspect",
    "go-http-client/1.1 nuclei",
    "sitelockspider",
    ".nasl",
    "interact.sh",
    "oast.",
];

/// MongoDB query and update operators (without the `$`), for operator-shaped names.
pub(crate) const NOSQL_OPERATORS: &[&str] = &[
    "ne",
    "eq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "nin",
    "regex",
    "where",
    "exists",
    "or",
    "and",
    "not",
    "nor",
    "elemmatch",
    "expr",
    "function",
    "accumulator",
    "type",
    "mod",
    "all",
    "size",
    "text",
    "jsonschema",
    "set",
    "unset",
    "inc",
    "push",
    "pull",
    "rename",
    "lookup",
    "match",
];

/// Script extensions a server may execute, for upload file names.
pub(crate) const SCRIPT_EXTENSIONS: &[&str] = &[
    "php", "php3", "php4", "php5", "php7", "php8", "phps", "phtml", "pht", "phar", "inc", "jsp",
    "jspx", "jspf", "asp", "aspx", "asa", "cer", "ashx", "asmx", "cfm", "cgi", "pl", "shtml",
];

/// Argument names that carry session ids.
pub(crate) const SESSION_PARAMS: &[&str] = &[
    "jsessionid",
    "phpsessid",
    "aspsessionid",
    "asp.net_sessionid",
    "sessionid",
    "session_id",
    "sid",
    "cfid",
    "cftoken",
    "jsession",
    "sess_id",
];

/// Every rule, for documentation and tests.
#[must_use]
pub fn catalogue() -> Vec<RuleInfo> {
    let mut all = vec![
        METHOD_UNUSUAL,
        HOST_MISSING,
        HOST_IP,
        FRAMING_CONFLICT,
        BAD_CONTENT_LENGTH,
        BAD_TRANSFER_ENCODING,
        BODY_ON_GET,
        CONTROL_CHARS,
        BAD_ENCODING,
        BAD_METHOD_TOKEN,
        BAD_CONTENT_TYPE,
        MULTIPART_BAD,
        JSON_BAD,
        PROXY_HEADER,
        REQUEST_RANGE,
        MULTIPART_CHARSET,
        SCRIPT_UPLOAD,
        BODY_NO_TYPE,
        BAD_RANGE,
        BAD_TARGET,
        FULLWIDTH_ESCAPE,
        CONNECTION_CONFLICT,
        RESTRICTED_HEADER,
        BAD_HOST,
        INVALID_UTF8,
        CRLF_NAME,
        RFI_PARAM,
        LFI_BACKSLASH,
        BRACE_COMMAND,
        PHP_INDIRECT,
        HIDDEN_SCHEME,
        BODY_SIZE_LIMIT,
        JSON_LIMIT,
        ARG_LIMIT,
        SQLI,
        XSS,
        NOSQL_OPERATOR,
        SESSION_NAME,
        SCANNER,
        XXE,
    ];
    all.extend(SIGS.iter().map(|s| s.info));
    all
}
