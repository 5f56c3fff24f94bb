"""Audits the greeting counter's changes: a state trigger with a (input, ctx) condition."""

from motia import StateTriggerInput, logger, state, step

definition = step(
    {
        "name": "AuditCount",
        "triggers": [state(condition=lambda input, ctx: input.group_id == "counts")],
        "enqueues": [],
        "flows": ["greetings"],
    },
)


async def audit(input: StateTriggerInput) -> None:
    from motia import stateManager

    # Changes are delivered in parallel, so each is recorded, not the last one to arrive.
    n = (input.new_value or {}).get("n")
    await stateManager.update("audit", input.item_id, [{"type": "set", "path": f"seen.{n}",
                                                        "value": True}])
    logger.info("counter moved", {"item": input.item_id})


definition = definition.handle(audit)
