# A plain def event handler: ctx calls return their results, no await.
config = {
    "type": "event",
    "name": "Seen",
    "subscribes": ["greeted", "undeclared"],
    "emits": [],
}


def handler(input, context):
    name = input.get("name", "<undeclared>")
    before = context.state.get("seen", name) or {"n": 0}
    context.state.set("seen", name, {"n": before["n"] + 1})
