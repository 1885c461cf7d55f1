// An OPC UA server written with node-opcua for Plantwire's data interoperability tests.
//
//   node data_server.js PORT [LIMIT] [hide-limits]
//
// Listens on 127.0.0.1:PORT (no security), prints "ready PORT" once it accepts connections and
// stops on SIGTERM or when stdin closes. Every operation limit (read, browse, write, call,
// monitored items per call, ...) is LIMIT (default 20), so a client that sends more per request
// is refused with BadTooManyOperations. With "hide-limits" the server still enforces them but
// publishes 0 ("no limit") in Server/ServerCapabilities/OperationLimits, as some PLCs do.
//
// Namespace "urn:plantwire:test:data", object Machine (s=Machine), holds:
//   Vector Double[3], Counts Int32[], Blob ByteString, Label LocalizedText (de-DE), Started DateTime,
//   Id Guid, State (enumeration MachineState), Big Int64 (beyond a double's precision),
//   Counter UInt64 above 2^63 (+1 every 100 ms), Position (Range, a structure),
//   Ahead Double (source timestamp 1 h ahead of the clock, rewritten every 100 ms),
//   "Axis/X" (a browse name with "/") beside folder Axis holding X,
//   variable Pump beside folder Pump holding Flow, Bulk/B00..B39 (more tags than the limit),
//   and method SetRecipe(Name: String, Feed: Double, Offsets: Double[], Count: UInt64)
//   -> (Accepted: Boolean, Summary: String, Total: Double, Count: UInt64).
"use strict";

const {
    OPCUAServer,
    Variant,
    DataType,
    VariantArrayType,
    StatusCodes,
    BrowseDirection,
    MessageSecurityMode,
    SecurityPolicy,
    coerceLocalizedText,
} = require("node-opcua");

const NAMESPACE = "urn:plantwire:test:data";
const port = Number(process.argv[2]);
const limit = Number(process.argv[3] || 20);
const hideLimits = process.argv[4] === "hide-limits";
const HOUR_MS = 3600 * 1000;

function addValue(namespace, parent, name, dataType, value, options = {}) {
    return namespace.addVariable({
        componentOf: parent,
        browseName: name,
        nodeId: `s=${options.id || name}`,
        dataType,
        valueRank: options.valueRank === undefined ? -1 : options.valueRank,
        arrayDimensions: options.arrayDimensions,
        accessLevel: "CurrentRead | CurrentWrite",
        userAccessLevel: "CurrentRead | CurrentWrite",
        value: new Variant({
            dataType: options.variantType || dataType,
            arrayType: options.valueRank >= 0 ? VariantArrayType.Array : VariantArrayType.Scalar,
            value,
        }),
    });
}

function addFolder(namespace, parent, name, id) {
    return namespace.addObject({ organizedBy: parent, browseName: name, nodeId: id, typeDefinition: "FolderType" });
}

function buildMachine(server) {
    const addressSpace = server.engine.addressSpace;
    const namespace = addressSpace.registerNamespace(NAMESPACE);
    const machine = namespace.addObject({
        organizedBy: addressSpace.rootFolder.objects,
        browseName: "Machine",
        nodeId: "s=Machine",
    });
    addValue(namespace, machine, "Vector", DataType.Double, new Float64Array([57.0, 114.0, -57.0]), {
        valueRank: 1,
        arrayDimensions: [3],
    });
    addValue(namespace, machine, "Counts", DataType.Int32, new Int32Array([1, 2, 3, 4]), {
        valueRank: 1,
        arrayDimensions: [0],
    });
    addValue(namespace, machine, "Blob", DataType.ByteString, Buffer.from([0x01, 0x02, 0xfe, 0xff]));
    addValue(
        namespace,
        machine,
        "Label",
        DataType.LocalizedText,
        coerceLocalizedText({ text: "Fräse läuft", locale: "de-DE" }),
    );
    addValue(namespace, machine, "Started", DataType.DateTime, new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 123)));
    addValue(namespace, machine, "Id", DataType.Guid, "72962B91-FA75-4AE6-8D28-B404DC7DAF63");
    const states = namespace.addEnumerationType({
        browseName: "MachineState",
        enumeration: ["Idle", "Running", "Fault"],
    });
    addValue(namespace, machine, "State", states, 1, { variantType: DataType.Int32 });
    addValue(namespace, machine, "Big", DataType.Int64, [0xffdfffff, 0xffffffff]); // -(2^53) - 1, as [high, low] words
    const counter = addValue(namespace, machine, "Counter", DataType.UInt64, [0x80000000, 5]); // 2^63 + 5
    const vector = addressSpace.constructExtensionObject(addressSpace.findDataType("Range"), {
        low: 1.5,
        high: 3.25,
    });
    addValue(namespace, machine, "Position", addressSpace.findDataType("Range"), vector, {
        variantType: DataType.ExtensionObject,
    });
    const ahead = addValue(namespace, machine, "Ahead", DataType.Double, 0.0);

    addValue(namespace, machine, "Axis/X", DataType.Double, 1.0, { id: "Machine.AxisSlashX" });
    const axis = addFolder(namespace, machine, "Axis", "s=Machine.Axis");
    addValue(namespace, axis, "X", DataType.Double, 2.0, { id: "Machine.Axis.X" });
    addValue(namespace, machine, "Pump", DataType.Double, 3.0, { id: "Machine.Pump" });
    const pumpFolder = addFolder(namespace, machine, "Pump", "s=Machine.PumpFolder");
    addValue(namespace, pumpFolder, "Flow", DataType.Double, 4.0, { id: "Machine.PumpFolder.Flow" });
    const bulk = addFolder(namespace, machine, "Bulk", "s=Machine.Bulk");
    for (let i = 0; i < 40; i++) {
        const name = `B${String(i).padStart(2, "0")}`;
        addValue(namespace, bulk, name, DataType.Double, i, { id: `Machine.Bulk.${name}` });
    }
    addRecipeMethod(namespace, machine);

    let count = 5;
    let tick = 0;
    setInterval(() => {
        count += 1;
        tick += 1;
        counter.setValueFromSource(new Variant({ dataType: DataType.UInt64, arrayType: VariantArrayType.Scalar, value: [0x80000000, count] }));
        ahead.setValueFromSource(
            new Variant({ dataType: DataType.Double, value: tick }),
            StatusCodes.Good,
            new Date(Date.now() + HOUR_MS),
        );
    }, 100);
}

function addRecipeMethod(namespace, machine) {
    const method = namespace.addMethod(machine, {
        browseName: "SetRecipe",
        nodeId: "s=Machine.SetRecipe",
        inputArguments: [
            { name: "Name", dataType: DataType.String, valueRank: -1 },
            { name: "Feed", dataType: DataType.Double, valueRank: -1 },
            { name: "Offsets", dataType: DataType.Double, valueRank: 1, arrayDimensions: [0] },
            { name: "Count", dataType: DataType.UInt64, valueRank: -1 },
        ],
        outputArguments: [
            { name: "Accepted", dataType: DataType.Boolean, valueRank: -1 },
            { name: "Summary", dataType: DataType.String, valueRank: -1 },
            { name: "Total", dataType: DataType.Double, valueRank: -1 },
            { name: "Count", dataType: DataType.UInt64, valueRank: -1 },
        ],
    });
    method.bindMethod((inputs, context, callback) => {
        const [name, feed, offsets, count] = inputs.map((v) => v.value);
        const total = feed + Array.from(offsets || []).reduce((a, b) => a + b, 0);
        // UInt64 arrives as [high, low]; send it back plus one.
        const [high, low] = count;
        const next = low === 0xffffffff ? [high + 1, 0] : [high, low + 1];
        callback(null, {
            statusCode: StatusCodes.Good,
            outputArguments: [
                { dataType: DataType.Boolean, value: true },
                { dataType: DataType.String, value: `${name}@${feed}` },
                { dataType: DataType.Double, value: total },
                { dataType: DataType.UInt64, arrayType: VariantArrayType.Scalar, value: next },
            ],
        });
    });
}

async function main() {
    const operationLimits = {
        maxNodesPerRead: limit,
        maxNodesPerWrite: limit,
        maxNodesPerBrowse: limit,
        maxNodesPerMethodCall: limit,
        maxMonitoredItemsPerCall: limit,
        maxNodesPerRegisterNodes: limit,
        maxNodesPerTranslateBrowsePathsToNodeIds: limit,
        maxNodesPerNodeManagement: limit,
        maxNodesPerHistoryReadData: limit,
        maxNodesPerHistoryReadEvents: limit,
        maxNodesPerHistoryUpdateData: limit,
        maxNodesPerHistoryUpdateEvents: limit,
    };
    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        alternateHostname: [],
        serverInfo: { applicationUri: "urn:plantwire:test:data-server", productUri: "plantwire-data-server" },
        serverCapabilities: { operationLimits },
        securityModes: [MessageSecurityMode.None],
        securityPolicies: [SecurityPolicy.None],
        allowAnonymous: true,
    });
    await server.initialize();
    buildMachine(server);
    if (hideLimits) {
        const addressSpace = server.engine.addressSpace;
        const limits = addressSpace.findNode("ns=0;i=11704"); // Server/ServerCapabilities/OperationLimits
        for (const ref of limits.findReferencesExAsObject("HasProperty", BrowseDirection.Forward)) {
            ref.bindVariable({ get: () => new Variant({ dataType: DataType.UInt32, value: 0 }) }, true);
        }
    }
    await server.start();
    process.stdout.write(`ready ${port}\n`);
    const stop = async () => {
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.stdin.on("end", stop);
    process.stdin.resume();
}

main().catch((err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
