// A secure-only OPC UA server written with node-opcua, for the gateway's security tests.
//
//   node secure_server.js --port 4841 --pki DIR --user NAME --password-file FILE [--anonymous]
//
// Offers exactly one endpoint: Basic256Sha256 / SignAndEncrypt (no None endpoint, no Sign), and
// accepts only the given user name and password (anonymous only with --anonymous). Client
// certificates are accepted automatically (the test is about the gateway's side of trust), and
// the server's own certificate is created below --pki on first start. Object "m1" (ns=1;s=m1)
// holds "Counter" (Double, +1 every 100 ms) and "Constant" (Double, never changes).
// Prints "READY <port>" on stdout once listening.
"use strict";
const fs = require("fs");
const path = require("path");
const {
    OPCUAServer,
    OPCUACertificateManager,
    MessageSecurityMode,
    SecurityPolicy,
    DataType,
    Variant,
    StatusCodes,
} = require("node-opcua");

function option(name, fallback) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
    const port = parseInt(option("port", "4841"), 10);
    const pki = path.resolve(option("pki", "pki-server"));
    const user = option("user", "operator");
    const passwordFile = option("password-file");
    const password = passwordFile ? fs.readFileSync(passwordFile, "utf8").split("\n")[0] : "secret";
    const anonymous = process.argv.includes("--anonymous");

    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: pki,
        automaticallyAcceptUnknownCertificate: true,
    });
    await serverCertificateManager.initialize();
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "users"),
        automaticallyAcceptUnknownCertificate: true,
    });
    await userCertificateManager.initialize();
    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        alternateHostname: ["127.0.0.1"],
        securityModes: [MessageSecurityMode.SignAndEncrypt],
        securityPolicies: [SecurityPolicy.Basic256Sha256],
        allowAnonymous: anonymous,
        serverCertificateManager,
        userCertificateManager,
        userManager: { isValidUser: (name, pass) => name === user && pass === password },
        buildInfo: { productName: "plantwire-secure-test-server" },
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.getOwnNamespace();
    const m1 = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "m1", nodeId: "s=m1" });
    let counter = 0;
    const counterVar = ns.addVariable({
        componentOf: m1,
        browseName: "Counter",
        nodeId: "s=m1.Counter",
        dataType: "Double",
        value: new Variant({ dataType: DataType.Double, value: 0 }),
    });
    ns.addVariable({
        componentOf: m1,
        browseName: "Constant",
        nodeId: "s=m1.Constant",
        dataType: "Double",
        value: new Variant({ dataType: DataType.Double, value: 42 }),
    });
    const timer = setInterval(() => {
        counter += 1;
        counterVar.setValueFromSource(new Variant({ dataType: DataType.Double, value: counter }), StatusCodes.Good);
    }, 100);
    await server.start();
    process.stdout.write(`READY ${port}\n`);
    const stop = async () => {
        clearInterval(timer);
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((err) => {
    process.stderr.write(`secure_server: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
