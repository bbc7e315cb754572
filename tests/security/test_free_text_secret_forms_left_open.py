"""Free-text credential forms the notes of 2026-12-06 left open, reproduced on 2e0dbd4 and closed.

The masking every log line, error and CLI message passes through (``mask_text``) left these as written: a flag
written with one dash as keytool and openssl write theirs (``-storepass S3cret``, ``-passin pass:S3cret``, also in an
argument list's repr), mysql's password glued to ``-p`` (``mysql -uroot -pS3cret``), a flag with a bracket or a comma
before it (``(--password x)``), an element's text cut short before its closing tag (``<password>S3cret``) and
escaped markup (``&lt;password&gt;S3cret&lt;/password&gt;``, as an HTML error page or an escaped log field writes it).
The document redaction took ``PIN is 2500`` after ``Cost per`` for a PIN, a price.

Each test uses its own marker strings: the helper remembers every secret it has seen in the process.
"""

from __future__ import annotations

import pytest

from tests.linear_time import in_linear_time

MASK = "***"


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("keytool -list -keystore ks.jks -storepass LeftOpenStore1 -v", "LeftOpenStore1", "-v"),
        ("keytool -importkeystore -srcstorepass LeftOpenSrc2 -deststorepass LeftOpenDest3", "LeftOpenDest3", "-src"),
        ("openssl rsa -in key.pem -passin pass:LeftOpenPassin4 -out x", "LeftOpenPassin4", "-out x"),
        ("java -jar tool.jar -password LeftOpenJava5", "LeftOpenJava5", "java -jar tool.jar"),
        ("Command '['keytool', '-storepass', 'LeftOpenArgv6']' returned non-zero", "LeftOpenArgv6", "'-storepass'"),
        ("mysql -uroot -pLeftOpenMysql7 -h db.internal", "LeftOpenMysql7", "-h db.internal"),
        ("Command '['mysqldump', '-uroot', '-pLeftOpenDump8', 'shop']' failed", "LeftOpenDump8", "'shop'"),
        ("MariaDB-dump -u app -pLeftOpenMaria9 shop", "LeftOpenMaria9", "shop"),
        ("usage (--password LeftOpenParen10) then more", "LeftOpenParen10", ") then more"),
        ("args [-storepass LeftOpenBracket11] x", "LeftOpenBracket11", "] x"),
        ("opts a,--token LeftOpenComma12 b", "LeftOpenComma12", " b"),
        ("soap request cut short: <password>LeftOpenCut13", "LeftOpenCut13", "cut short:"),
        ("<ns:ApiKey>LeftOpenCutNs14", "LeftOpenCutNs14", "<ns:ApiKey>"),
        ("&lt;password&gt;LeftOpenEscaped15&lt;/password&gt; &lt;user&gt;bob", "LeftOpenEscaped15", "&lt;user&gt;bob"),
        ('&lt;apiKey scope="all"&gt;LeftOpenEscAttr16&lt;/apiKey&gt;', "LeftOpenEscAttr16", "&lt;/apiKey&gt;"),
        ("&lt;client_secret&gt;LeftOpenEscCut17", "LeftOpenEscCut17", "&lt;client_secret&gt;"),
        # review of the change: a flag whose name says nothing secret hid a secret flag in its value
        ("sh -c 'mysql --password LeftOpenNest18 db'", "LeftOpenNest18", "sh -c 'mysql"),
        ("Command '['sh', '-c', 'mysql --password LeftOpenNest19']' returned 1.", "LeftOpenNest19", "returned 1."),
        ('nohup bash -c "./deploy --api-key LeftOpenNest20" &', "LeftOpenNest20", "./deploy"),
        ('git commit -m "wip; --password LeftOpenNest21"', "LeftOpenNest21", "git commit -m"),
        ("warning: -W isn't supported; running tool --token LeftOpenNest22", "LeftOpenNest22", "-W isn't"),
        ("tool --command 'mysql --password LeftOpenNest23 db'", "LeftOpenNest23", "--command 'mysql"),
        ("['ssh', '--command', 'x --password LeftOpenNest24']", "LeftOpenNest24", "'--command', 'x"),
        ("run --shell \"sh --cmd 'x --token LeftOpenNest25'\"", "LeftOpenNest25", "--shell"),
        ("(--opts 'x --password LeftOpenNest26') y", "LeftOpenNest26", "(--opts 'x"),
        ("-storepass LeftOpenGlued27'--password', 'LeftOpenGlued28'", "LeftOpenGlued28", "-storepass"),
        ("--password LeftOpenCont29\\\n--token LeftOpenCont30 x", "LeftOpenCont30", "--token"),
        # an element cut short: the first word, not a pair's name inside it; escaped in more ways
        ("<credentials>password: LeftOpenPair31", "LeftOpenPair31", "<credentials>password: "),
        ("&lt;credentials&gt;token: LeftOpenPair32", "LeftOpenPair32", "&lt;credentials&gt;token: "),
        ("<password>S3&amp;LeftOpenAmp33 x", "LeftOpenAmp33", " x"),
        ("\\u003cpassword\\u003eLeftOpenGo34\\u003c/password\\u003e", "LeftOpenGo34", "\\u003c/password"),
        ("&#60;password&#62;LeftOpenDec35&#60;/password&#62;", "LeftOpenDec35", "&#60;/password&#62;"),
        ("&#x3C;apiKey&#x3E;LeftOpenHex36&#x3C;/apiKey&#x3E;", "LeftOpenHex36", "&#x3C;/apiKey&#x3E;"),
        ("&#x3c;password x=&quot;1&quot;&#x3e;LeftOpenHex37", "LeftOpenHex37", "&#x3e;"),
        ("\\u003cclient_secret\\u003eLeftOpenGoCut38", "LeftOpenGoCut38", "\\u003cclient_secret\\u003e"),
        # a tool's password after a one-letter flag
        ("mysql -uroot -p'LeftOpenTool39' db", "LeftOpenTool39", " db"),
        ('mysql -uroot -p"LeftOpenTool40" db', "LeftOpenTool40", " db"),
        ("mysqldump -uroot -p$'LeftOpenTool41' db", "LeftOpenTool41", " db"),
        ("['mysql',\n '-uroot',\n '-pLeftOpenTool42']", "LeftOpenTool42", "'-p"),
        ('[\n  "mysql",\n  "-uroot",\n  "-pLeftOpenTool43"\n]', "LeftOpenTool43", '"-p'),
        ("['sshpass', '-p', 'LeftOpenTool44', 'ssh', 'host']", "LeftOpenTool44", "'ssh', 'host'"),
        ("mysql \\\n  -uroot \\\n  -pLeftOpenTool45 shop", "LeftOpenTool45", " shop"),
        ("mysql.exe -uroot -pLeftOpenTool46", "LeftOpenTool46", "mysql.exe"),
        ("/usr/bin/mysql -uroot -pLeftOpenTool47", "LeftOpenTool47", "/usr/bin/mysql"),
        ("7z a -pLeftOpenTool48 out.7z dir", "LeftOpenTool48", " out.7z dir"),
        ("sshpass -p LeftOpenTool49 ssh host", "LeftOpenTool49", " ssh host"),
        ("docker login -u ci -p LeftOpenTool50 registry.example.com", "LeftOpenTool50", " registry"),
        ("podman login -p LeftOpenTool51 quay.io", "LeftOpenTool51", " quay.io"),
        ("redis-cli -h cache -a LeftOpenTool52 ping", "LeftOpenTool52", " ping"),
        ("ldapsearch -x -D cn=admin -w LeftOpenTool53 -b dc=x", "LeftOpenTool53", " -b dc=x"),
        ("sqlcmd -S db -U sa -P LeftOpenTool54 -Q x", "LeftOpenTool54", " -Q x"),
        ("bcp t out f -U sa -P LeftOpenTool55", "LeftOpenTool55", "bcp t out f"),
        ("openssl enc -aes256 -k LeftOpenTool56 -in f", "LeftOpenTool56", " -in f"),
        ("['docker', 'login', '-p', 'LeftOpenTool57']", "LeftOpenTool57", "'login'"),
        ("cd /tmp && mysql -uroot -pLeftOpenTool58 && ls", "LeftOpenTool58", "&& ls"),
        # the re-review: glued forms of the other tools, a quoted ; inside a tool's command, a command line in an item
        ("sshpass -p'LeftOpenReTool60' ssh user@host", "LeftOpenReTool60", "ssh user@host"),
        ("['sshpass', '-pLeftOpenReTool61', 'ssh', 'h']", "LeftOpenReTool61", "'ssh', 'h'"),
        ("ldapsearch -x -D 'cn=admin' -w'LeftOpenReTool62'", "LeftOpenReTool62", "cn=admin"),
        ('sqlcmd -S srv -U sa -P"LeftOpenReTool63"', "LeftOpenReTool63", "-U sa"),
        ("['docker', 'login', '-u', 'x', '-pLeftOpenReTool64']", "LeftOpenReTool64", "'-u', 'x'"),
        ("mysql -e 'CREATE DATABASE s; GRANT ALL ON s.* TO a' -uroot -pLeftOpenReTool65", "LeftOpenReTool65", "GRANT"),
        ("mysql -h 'a;b' -pLeftOpenReTool66 shop", "LeftOpenReTool66", " shop"),
        (
            "Command '['docker', 'exec', 'db', 'sh', '-c', 'mysqldump -uroot -pLeftOpenReTool67 shop']' returned 2.",
            "LeftOpenReTool67",
            " shop']' returned 2.",
        ),
        ("['docker', 'exec', 'db', '/usr/bin/mysql', '-uroot', '-pLeftOpenReTool68']", "LeftOpenReTool68", "'exec'"),
        ("openssl rsa -passin pass:LeftOpenReTool69 -in k.pem", "LeftOpenReTool69", "-in k.pem"),
        # the third review: sshpass's options that take an argument, docker's global options before login
        ("['sshpass', '-d', '3', '-p', 'LeftOpenThird70', 'ssh', 'host']", "LeftOpenThird70", "'ssh', 'host'"),
        ("['sshpass', '-P', 'assword:', '-p', 'LeftOpenThird71', 'ssh']", "LeftOpenThird71", "'assword:'"),
        ("docker --config /x login -u u -p LeftOpenThird72", "LeftOpenThird72", "--config /x login -u u"),
        ("docker -H tcp://h:2375 login -u u -pLeftOpenThird73", "LeftOpenThird73", "tcp://h:2375"),
    ],
)
def test_a_form_left_open_is_masked(text: str, secret: str, kept: str) -> None:
    from flytekitplugins.aios_core.redact import mask_text

    masked = mask_text(text)
    assert secret not in masked and secret[:-2] not in masked, masked
    assert MASK in masked and kept in masked, masked


def test_what_only_looks_like_those_forms_stays_as_written() -> None:
    from flytekitplugins.aios_core.redact import mask_text

    for text in (
        "cp -p build dist && ls -l /tmp --color auto",
        "mysql -u app -p -h db -P3306",  # -p alone asks for the password; -P is the port
        "rsync -p src dst; ssh -p 2222 host",  # -p elsewhere is a flag, a port
        "a -v 3 -n 5 -k token_refresh",
        "the non-secret word, a -- dash, x - y",
        "Set <password>: then retry, or <token>. Or <token> alone",
        "usage: aios login --token <token> --server <url>",
        "&lt;password&gt;&lt;/password&gt; is empty; &lt;total&gt;95.00&lt;/total&gt;",
        "(--limit 5) [-n 3]",
        # review of the change: one-dash flags whose name only holds a credential's word, placeholders after a tag
        "ftp -passive host.example.com",
        "javac -bypass-check Foo.java",
        "[-tokens 5, -secret-count 3]",
        "tool -bypass now; map -compass north",
        "https://<token>@github.com/org/repo.git",
        "GET /v1/<api_key>/status",
        "std::unique_ptr<Token>* p",
        "<secret>-- TODO </b>",
        "sh -c 'make all' && git commit -m 'wip' -a",
        # -p elsewhere than a tool that takes a password there
        "find /var/lib/mysql -name '*.ibd' -perm 600 -print",
        "mysqld started; ps -p1234 -o pid,cmd",
        "mysql backup: find /backups -prune -o -path ./tmp",
        "docker run -p 8080:80 img",
        "docker run -d -p 3306:3306 mysql:8",
        "ssh -p 2222 host",
        # the re-review: mysql's -p alone asks for the password, sshpass's command has options of its own, mysql_config
        # and mysqlclient are no mysql client, openssl's other password sources are no password
        "Command 'mysql -uroot -p' returned non-zero exit status 1. Next: retry in 5s (attempt 2/3)",
        '{"level":"info","msg":"exec","cmd":"mysql -u root -p","db":"shop","trace_id":"abc"}',
        "Run 'mysql -u root -p' to connect, then type the password at the prompt; see docs",
        "INFO sshpass -f /run/pw rsync -e 'ssh -p 2222' src host:dst",
        "sshpass -f /run/pw ssh -o StrictHostKeyChecking=no -p 2222 deploy@host 'systemctl restart app'",
        "gcc -o app main.o $(mysql_config --libs) -pthread -pipe",
        "pip install mysqlclient -pre",
        "mysql -u root -p shop",
        "['mysql', '-p', 'shop']",
        "openssl rsa -passin env:PW -passout file:/etc/pw; openssl x -passin stdin",
        # the third review: openssl's -k takes the next word only (-key, -keyout, -kfile are other options)
        "openssl req -new -key server.key -out server.csr -keyout key.pem -keyform PEM -kfile /run/pw",
        "Command '['openssl', 'req', '-new', '-key', 'server.key']' returned non-zero exit status 1.",
    ):
        assert mask_text(text) == text


def test_a_pair_and_a_tool_s_password_are_both_masked() -> None:
    from flytekitplugins.aios_core.redact import mask_text

    masked = mask_text(" mysql -pLeftOpenBoth59<token: LeftOpenBoth60")
    assert "LeftOpenBoth59" not in masked and "LeftOpenBoth60" not in masked, masked
    assert mask_text("<credentials>password: LeftOpenExact61") == "<credentials>password: ***"


@pytest.mark.parametrize(
    "unit",
    [
        *("&lt;password&gt;", "&lt;a ", "-storepass '", "mysql -p", "(--password (", "-"),
        *("(-c '", "-c '(-c \"", "-a 'x -a \"", "sh -c '", "(--c '", "--c '(--c \"", "--a 'x --a \"", "'--c', '"),
        *("--c x\\\n--token", "\\u003cpassword\\u003e", "\\u003ca ", "&#60;password&#62;", "&#60;a "),
        *("&#x3c;password&#x3e;", "&#X3C;a ", "<password>x&amp;", "mysql -p'", "['mysql', '-p", "sshpass -p "),
        *("mysql ", "['docker', ", "mysql \\\n", "redis-cli -a '"),
        *("'mysql', '-x', ", "'sshpass', '-x', ", "'sh -c mysql -p', ", "sshpass -f x ", "mysql -e 'a;"),  # re-review
    ],
)
def test_the_new_forms_stay_linear(unit: str) -> None:
    from flytekitplugins.aios_core.redact import mask_text

    masked = in_linear_time(
        mask_text, lambda n: unit * (n // len(unit)) + " password=S3cretLeftOpenLinear", 200_000, 1.0
    )
    assert "S3cretLeftOpenLinear" not in masked


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Export it with java -jar sign.jar -password DocSign!42 -alias app", "DocSign!42"),
        ("Run (--password 'Doc Paren Quoted') once.", "Doc Paren Quoted"),
        ("Please choose a PIN: 4821.", "4821"),
        ("Your PIN is 7305.", "7305"),
        ("keytool -storepass Qw7!zPx9 -list", "Qw7!zPx9"),
        ("openssl rsa -in k.pem -passin pass:Hunter2x! -out x", "Hunter2x!"),
        ("jarsigner -keypass Kp4!sgnR app.jar", "Kp4!sgnR"),
        ("Run sh -c 'mysql --password Xk9qTr27vb db' on the host.", "Xk9qTr27vb"),
        ("ssh -o 'ProxyCommand x --token Xk9qTr29vbmn' host", "Xk9qTr29vbmn"),
        ("Run tool --command 'mysql --password Xk9qTr31vb' once.", "Xk9qTr31vb"),
    ],
)
def test_a_document_s_new_forms_are_redacted(text: str, secret: str) -> None:
    from tasks.documents.protect import redact

    red = redact(text)
    assert secret not in red.text and red.secrets == 1, red.text


@pytest.mark.parametrize(
    "text",
    [
        "Cost per PIN is 2500.",
        "Replacement: each PIN: 1200\n",
        "Every PIN is 1000.",
        "run -storepass now",
        "Run ftp -passive ftp.example.com now",
        "He said -pass the salt- loudly",
    ],
)
def test_a_document_s_price_of_each_pin_stays(text: str) -> None:
    from tasks.documents.protect import redact

    red = redact(text)
    assert red.text == text and red.secrets == 0, red.text


@pytest.mark.parametrize("unit", ["(--c '", "--c '(--c \"", "--a 'x --a \"", "(-storepass (", "--c x\\\n--token"])
def test_a_document_s_flags_stay_linear(unit: str) -> None:
    from tasks.documents.protect import redact

    in_linear_time(redact, lambda n: (unit * (n // len(unit)))[:n], 200_000, 1.0)
