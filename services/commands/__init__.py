"""The commands of the CRM, each defined once as a typed object: what HTTP, Kafka inbound, the CLI, imports
and tests send, and what `CrmApplication.handle` runs.

One module per aggregate; a new command goes next to its siblings, gets a handler in services/application.py
(`@handles(TheCommand)`) and, if it is offered over HTTP, a route whose body is `body_of(TheCommand)`.
"""

from services.commands.command import Change, Command, Creation
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from services.commands.campaigns import (CampaignChange, CloseCampaign, LaunchCampaign, PlanCampaign, RecordCost,
                                         RecordResponse)
from services.commands.customers import (AddTag, ChangeConsent, ChangeContactDetails, ChangeCustomerProperties,
                                         CustomerChange, ForgetCustomer, LogTouch, RegisterCustomer, RemoveTag)
from services.commands.deals import (ChangeAmount, ChangeDealProperties, ChangeOwner, ChangeStage, DealChange, LoseDeal,
                                     OpenDeal, ReopenDeal, WinDeal)
from services.commands.rates import RecordExchangeRate
from services.commands.forecasts import (AssignTeam, ChangeExpectedClose, ChangeForecastCategory, ChangeProbability,
                                         SetStageForecast, SetTarget)
from services.commands.leads import (AssignLead, CaptureLead, ChangeLeadProperties, ContactLead, ConvertLead,
                                     DisqualifyLead, LeadChange, QualifyLead)
from services.commands.pipelines import (DefinePipeline, InsertStage, PipelineChange, RenameStage, SetStageReminders,
                                         Stage)
from services.commands.vocabularies import (AddVocabularyValue, RetireVocabularyValue, SetVocabulary,
                                            VocabularyChange)
from services.commands.tickets import (AssignTicket, ChangeTicketStatus, CloseTicket, OpenTicket, RateTicket,
                                       RecordCustomerReply, ReopenTicket, ResolveTicket, TicketChange)

__all__ = [
    "AddTag", "AssignLead", "AssignTicket", "CampaignChange", "CaptureLead", "Change", "ChangeAmount",
    "ChangeConsent", "ChangeContactDetails", "ChangeCustomerProperties", "ChangeDealProperties",
    "ChangeLeadProperties", "ChangeOwner", "ChangeStage", "ChangeTicketStatus", "CloseCampaign",
    "CloseTicket", "Command", "ContactLead", "ConvertLead", "Creation", "CustomerChange", "DealChange",
    "DefinePipeline", "DisqualifyLead", "ForgetCustomer", "InsertStage", "LaunchCampaign", "LeadChange",
    "LogTouch", "LoseDeal", "OpenDeal", "OpenTicket", "PipelineChange", "PlanCampaign", "QualifyLead",
    "RateTicket", "RecordCost", "RecordExchangeRate", "RecordCustomerReply", "RecordResponse", "RegisterCustomer",
    "RemoveTag", "RenameStage", "ReopenDeal", "ReopenTicket", "ResolveTicket", "SetStageReminders", "Stage",
    "TicketChange", "WinDeal",
    "AddVocabularyValue", "RetireVocabularyValue", "SetVocabulary", "VocabularyChange",
    "AssignTeam", "ChangeExpectedClose", "ChangeForecastCategory", "ChangeProbability", "SetStageForecast", "SetTarget",
    "DeclareWinner", "DefineVariants", "RecordExposures", "StopVariant",
]
