"""Customer: contact details, touches, tags, marketing consent, and being forgotten (erasure)."""

from __future__ import annotations

import re

import pytest

from domain.customer import FORGOTTEN_NAME, Customer
from domain.errors import DomainError
from domain.vocabulary import Terms, Vocabularies


@pytest.fixture
def register(meta_at):
    def make(**overrides) -> Customer:
        kwargs = dict(name="周杰", company="深圳前海数据有限公司", region="华南", industry="金融",
                      channel="referral", meta=meta_at(0), email=" zhoujie@example.cn ", phone=" 13800001111 ")
        kwargs.update(overrides)
        return Customer.register(**kwargs)

    return make


@pytest.fixture
def customer(register) -> Customer:
    return register()


def test_absent_region_industry_and_channel_are_stored_as_unknown(register):
    registered = register(region=" ", industry=None, channel="").pending_events[0]

    assert (registered.region, registered.industry, registered.channel) == ("unknown", "unknown", "unknown")


def test_a_closed_industry_vocabulary_refuses_other_industries_but_never_unknown(register):
    industries = Vocabularies({"industry": Terms("industry", ("金融", "零售"), open=False)})

    assert register(industry="unknown", vocabularies=industries).industry == "unknown"
    with pytest.raises(DomainError, match="unknown industry '制造'; expected one of: 金融, 零售"):
        register(industry="制造", vocabularies=industries)


def test_register_sets_details_and_defaults(customer):
    assert (customer.name, customer.company, customer.region) == ("周杰", "深圳前海数据有限公司", "华南")
    assert (customer.email, customer.phone) == ("zhoujie@example.cn", "13800001111")
    assert customer.tags == set()
    assert customer.marketing_consent is False
    assert customer.forgotten is False
    assert isinstance(customer.pending_events[0], Customer.Registered)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "customer name must not be empty"),
        ({"channel": "tv"}, "unknown acquisition channel 'tv'; expected one of:"),
        ({"region": "王先生 139 1234 5678"}, "region must not hold an e-mail address or a phone number"),
        ({"industry": "wang@example.com"}, "industry must not hold an e-mail address or a phone number"),
    ],
)
def test_register_refusals(register, overrides, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        register(**overrides)


def test_add_and_remove_tags(customer, meta_at):
    customer.add_tag(" VIP客户 ", meta_at(1))
    customer.add_tag("金融行业", meta_at(2))
    assert customer.tags == {"VIP客户", "金融行业"}
    assert customer.pending_events[-2].tag == "VIP客户"
    customer.remove_tag("VIP客户", meta_at(3))
    assert customer.tags == {"金融行业"}
    assert isinstance(customer.pending_events[-1], Customer.TagRemoved)
    customer.add_tag("VIP客户", meta_at(4))  # can be tagged again after removal
    assert "VIP客户" in customer.tags


def test_duplicate_tag_is_refused(customer, meta_at, refuse):
    customer.add_tag("VIP客户", meta_at(1))
    refuse(customer, "customer already has this tag", lambda: customer.add_tag("VIP客户", meta_at(2)))
    refuse(customer, "customer already has this tag", lambda: customer.add_tag("  VIP客户\t", meta_at(2)))


def test_tag_refusals(customer, meta_at, refuse):
    refuse(customer, "tag must not be empty", lambda: customer.add_tag("  ", meta_at(1)))
    refuse(customer, "customer has no such tag", lambda: customer.remove_tag("潜力客户", meta_at(1)))


def test_remove_tag_accepts_the_same_spelling_add_tag_accepted(customer, meta_at):
    customer.add_tag(" VIP客户 ", meta_at(1))
    customer.remove_tag(" VIP客户 ", meta_at(2))
    assert customer.tags == set()


def test_change_contact_details(customer, meta_at, refuse):
    customer.change_contact_details(" zj@example.com ", "13900002222", meta_at(1))
    assert (customer.email, customer.phone) == ("zj@example.com", "13900002222")
    event = customer.pending_events[-1]
    assert isinstance(event, Customer.ContactDetailsChanged)
    assert (event.email, event.phone) == ("zj@example.com", "13900002222")
    refuse(customer, "contact details are unchanged",
           lambda: customer.change_contact_details("zj@example.com ", " 13900002222", meta_at(2)))


def test_log_touch(customer, meta_at, refuse):
    customer.log_touch("visit", "inbound", "  客户来访，讨论续约  ", meta_at(1, actor="王伟"))
    event = customer.pending_events[-1]
    assert isinstance(event, Customer.TouchLogged)
    assert (event.channel, event.direction, event.summary, event.actor) == ("visit", "inbound", "客户来访，讨论续约", "王伟")
    assert customer.version == 2
    refuse(customer, re.escape("unknown touch direction 'sideways'; expected one of: inbound, outbound"),
           lambda: customer.log_touch("email", "sideways", "", meta_at(2)))
    refuse(customer, "unknown touch channel 'referral'", lambda: customer.log_touch("referral", "inbound", "", meta_at(2)))


def test_consent_changes_and_refuses_no_op(customer, meta_at, refuse):
    refuse(customer, "marketing consent is already False", lambda: customer.change_consent(False, meta_at(1)))
    customer.change_consent(True, meta_at(1))
    assert customer.marketing_consent is True
    assert customer.pending_events[-1].marketing is True
    refuse(customer, "marketing consent is already True", lambda: customer.change_consent(True, meta_at(2)))


def test_forget_erases_personal_details(customer, meta_at):
    customer.add_tag("VIP客户", meta_at(1))
    customer.forget(meta_at(2, actor="dpo"))
    assert customer.forgotten is True
    assert (customer.name, customer.email, customer.phone) == (FORGOTTEN_NAME, "", "")
    event = customer.pending_events[-1]
    assert isinstance(event, Customer.Forgotten)
    assert event.actor == "dpo"


@pytest.mark.parametrize(
    "command",
    [
        lambda c, m: c.change_contact_details("new@example.cn", "", m),
        lambda c, m: c.log_touch("email", "outbound", "促销邮件", m),
        lambda c, m: c.add_tag("新标签", m),
        lambda c, m: c.remove_tag("VIP客户", m),
        lambda c, m: c.change_consent(True, m),
        lambda c, m: c.forget(m),
    ],
    ids=["contact_details", "log_touch", "add_tag", "remove_tag", "consent", "forget_again"],
)
def test_forgotten_customer_cannot_change(customer, meta_at, refuse, command):
    customer.add_tag("VIP客户", meta_at(1))
    customer.forget(meta_at(2))
    refuse(customer, "customer has been forgotten; their record can no longer change",
           lambda: command(customer, meta_at(3)))


def test_customer_command_earlier_than_last_event_is_refused(customer, meta_at, refuse):
    customer.add_tag("VIP客户", meta_at(5))
    refuse(customer, "is before this Customer's last event", lambda: customer.add_tag("老客户", meta_at(4)))


def test_replaying_customer_rebuilds_tags_consent_and_erasure(customer, meta_at, replay):
    customer.add_tag("VIP客户", meta_at(1))
    customer.add_tag("金融行业", meta_at(1))
    customer.remove_tag("VIP客户", meta_at(2))
    customer.change_consent(True, meta_at(3))
    customer.log_touch("phone", "outbound", "回访", meta_at(4))
    customer.change_contact_details("a@b.cn", "", meta_at(5))
    history = customer.collect_events()
    rebuilt = replay(history)
    assert (rebuilt.tags, rebuilt.marketing_consent, rebuilt.email) == ({"金融行业"}, True, "a@b.cn")
    assert (rebuilt.version, rebuilt.last_occurred_at) == (7, meta_at(5).occurred_at)

    # the rebuilt customer carries on where the original left off, and erasure replays too
    rebuilt.forget(meta_at(6))
    history += rebuilt.collect_events()
    assert history[-1].originator_version == 8
    forgotten = replay(history)
    assert (forgotten.forgotten, forgotten.name, forgotten.email, forgotten.phone) == (True, FORGOTTEN_NAME, "", "")
    assert (forgotten.tags, forgotten.company) == (set(), "")  # tags and company are personal data too


@pytest.mark.parametrize("value", [1, "yes", None])
def test_consent_must_be_a_boolean(value: object, meta_at) -> None:
    customer = Customer.register("张三", "", "华东", "制造业", "web", meta_at(0))
    with pytest.raises(DomainError, match="must be true or false"):
        customer.change_consent(value, meta_at(1))
