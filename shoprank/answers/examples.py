"""A tiny FAQ with known answers: for tests, the browser check and trying the help box locally."""

from __future__ import annotations

from shoprank.answers.records import Conversation, FaqEntry
from shoprank.shops import Shop

TINY_FAQ = [
    FaqEntry("shipping", "Orders ship within {ship_days} working days; you get a tracking link by e-mail.", (
        "how long does shipping take", "when will my order arrive", "my parcel has not arrived yet",
        "what is the delivery time", "how fast do you deliver")),
    FaqEntry("returns", "You can return any item within 30 days for a full refund.", (
        "can I return an item", "how do I send something back", "what is your return policy",
        "I want a refund for my purchase", "can I get my money back")),
    FaqEntry("payment", "We accept Visa, Mastercard and PayPal.", (
        "which payment methods do you accept", "can I pay with paypal", "do you take credit cards",
        "what cards can I use to pay", "is paying by visa possible")),
    FaqEntry("products", "Here is what we have in stock:", (
        "do you sell drills", "I am looking for a cordless drill", "do you have garden hoses",
        "have you got any kitchen knives", "I need a new hammer"), search=True),
]
TINY_OUT_OF_SCOPE = [
    Conversation(q, None) for q in (
        "what is the weather like tomorrow", "tell me a joke", "who won the football match last night",
        "what is the capital of france", "play some music")
]


def tiny_answers(shop: Shop, *, fine_tune: bool = False) -> str:
    """Store :data:`TINY_FAQ` (and out-of-scope conversations) in ``shop`` and publish an answers model."""
    from shoprank.answers.engine import VALUES_SETTING, publish_answers
    from shoprank.answers.train import AnswerTrainConfig
    from shoprank.training.loop import TrainConfig

    with shop.store() as store:
        store.put_faq(TINY_FAQ)
        store.append_conversations(TINY_OUT_OF_SCOPE)
        store.set_setting(VALUES_SETTING, {"ship_days": "2"})
    config = AnswerTrainConfig(train=TrainConfig(epochs=2, batch_size=8, patience=1), fine_tune=fine_tune,
                               encoder="minilm", min_steps=4, progress=False)
    version, _ = publish_answers(shop, config)
    return version
